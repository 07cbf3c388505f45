"""Records: atomic writes, config hashing, reading a sweep."""
import os

import polars as pl
import pytest

from tests.helpers import compose_spec
from transfer.atomic import write_parquet
from transfer.records import cell_dir, failed_cells, finished_hash, read_sweep


def test_config_hash_ignores_cell_identity_but_not_settings():
    base = compose_spec("model=qwen", "source_task=Counting").config_hash()
    other_cell = compose_spec("model=qwen", "source_task=Jigsaw", "seed=3", "sweep=b", "overwrite=true",
                              "paths.outputs=/y", "wandb.mode=disabled", "threads=2")
    assert other_cell.config_hash() == base
    assert compose_spec("model=qwen", "source_task=Counting", "train.steps=5").config_hash() != base
    assert compose_spec("model=qwen", "source_task=Counting", "model.tiny.hidden_size=64").config_hash() != base
    assert compose_spec("model=llava", "source_task=Counting").config_hash() != base


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "scores.parquet"
    write_parquet(pl.DataFrame({"a": [1]}), path)

    class Boom(pl.DataFrame):
        def write_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_parquet(Boom({"a": [2]}), path)
    assert pl.read_parquet(path)["a"].to_list() == [1]
    assert os.listdir(tmp_path) == ["scores.parquet"]            # no temp file left behind


def test_read_sweep_finished_hash_and_failed_markers(tmp_path):
    cell = cell_dir(tmp_path, "qwen", "Counting", 0)
    write_parquet(pl.DataFrame({"model": ["qwen"], "config_hash": ["abc"]}), cell / "scores.parquet")
    assert finished_hash(cell) is None   # scores without predictions: not finished
    write_parquet(pl.DataFrame({"idx": ["q1"]}), cell / "predictions.parquet")
    failed = cell_dir(tmp_path, "qwen", "Jigsaw", 0)
    failed.mkdir(parents=True)
    (failed / "FAILED.json").write_text('{"cell": "x", "error": "boom"}')
    assert finished_hash(cell) == "abc" and finished_hash(failed) is None
    assert read_sweep(tmp_path)["model"].to_list() == ["qwen"]
    assert [f["error"] for f in failed_cells(tmp_path)] == ["boom"]
