"""Reading and reshaping PGF tables: both layouts, one-line errors, matrices in TASK_NAMES order."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.helpers import long_frame
from transfer.analysis.tables import (
    model_size,
    normalise_pgf,
    ordered_models,
    read_pgf_table,
    seed_cube,
    seed_mean_matrix,
    seed_std_matrix,
)
from transfer.tasks import TASK_NAMES


def _paper_layout() -> pl.DataFrame:
    return pl.DataFrame({"seed": ["initial", "seed_0", "initial", "seed_0"],
                         "ft_task": ["Jigsaw", "Jigsaw", "Counting", "Counting"],
                         "task": ["Counting", "Counting", "Jigsaw", "Jigsaw"],
                         "perfection_gap_factor": [0.1, 0.3, -0.2, 0.0]})


def test_read_paper_layout_csv_takes_model_from_stem(tmp_path):
    path = tmp_path / "pgf_qwen2.5vl-7B-instruct.csv"
    _paper_layout().write_csv(path)
    frame = read_pgf_table(path)
    assert frame.columns == ["model", "source_task", "target_task", "seed", "pgf"]
    assert frame["model"].unique().to_list() == ["qwen2.5vl-7B-instruct"]
    tasks, matrix = seed_mean_matrix(frame, "qwen2.5vl-7B-instruct")
    assert tasks == ["Counting", "Jigsaw"]                     # TASK_NAMES order, not file order
    assert matrix[1, 0] == pytest.approx(0.2) and matrix[0, 1] == pytest.approx(-0.1)
    assert np.isnan(matrix[0, 0])                              # no in-task run in this file


def test_read_project_parquet_keeps_model_column_and_accuracy(tmp_path):
    frame = long_frame(np.full((2, 2, 2), 0.5), model="llava-0.5b").with_columns(
        pl.lit(0.4).alias("base_accuracy"), pl.col("seed").cast(pl.Int64))
    path = tmp_path / "pgf.parquet"
    frame.write_parquet(path)
    out = read_pgf_table(path)
    assert out["model"].unique().to_list() == ["llava-0.5b"]
    assert out.schema["seed"] == pl.String and "base_accuracy" in out.columns


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop("pgf"), r"lacks columns \['pgf'\]"),
    (lambda f: f.with_columns(pl.lit("Colour").alias("target_task")), "unknown target_task \\['Colour'\\]"),
    (lambda f: f.with_columns(pl.lit("none").alias("source_task")), "base model"),
    (lambda f: pl.concat([f, f]), "duplicated cells"),
    (lambda f: f.with_columns(pl.lit(float("nan")).alias("pgf")), "non-finite"),
])
def test_one_line_errors(change, message):
    frame = long_frame(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=message) as info:
        normalise_pgf(change(frame))
    assert "\n" not in str(info.value)


def test_unsupported_file_type(tmp_path):
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        read_pgf_table(tmp_path / "pgf.json")


def test_seed_cube_std_and_unknown_model():
    cube = np.array([[[0.1, 0.2], [0.3, 0.4]], [[0.3, 0.2], [0.1, 0.0]]])
    frame = long_frame(cube)
    tasks, seeds, out = seed_cube(frame, "m")
    assert tasks == TASK_NAMES[:2] and seeds == ["0", "1"] and np.allclose(out, cube)
    _, std = seed_std_matrix(frame, "m")
    assert std[0, 0] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    with pytest.raises(ValueError, match="unknown model 'x'"):
        seed_mean_matrix(frame, "x")


def test_models_sort_by_parameter_count():
    frame = pl.concat([long_frame(np.zeros((1, 1, 1)), model=m) for m in
                       ["qwen-32B", "qwen-3B", "idefics-256M", "qwen-7B", "custom"]])
    assert ordered_models(frame) == ["idefics-256M", "qwen-3B", "qwen-7B", "qwen-32B", "custom"]
    assert model_size("Qwen2.5-VL-7B-Instruct") == 7 and model_size("llava-0.5b") == 0.5
