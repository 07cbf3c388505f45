"""`data=blink data.root=DIR` through the CLI: a local snapshot in BLINK's layout (val only, as downloaded),
split by idx hash into training and evaluation questions (recorded and announced), and one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.data.blink import holdout_split, read_split, split_files, write_split
from transfer.embedded.suite import generate_rows
from transfer.tasks import TASK_NAMES

TARGETS = ["Counting", "Jigsaw"]
EVAL_LIMIT = 12   # experiment=test


@pytest.fixture(scope="module")
def blink_root(tmp_path_factory) -> Path:
    """A BLINK-layout snapshot: <root>/<Task>/val-00000-of-00001.parquet for the 13 tasks, no train split."""
    root = tmp_path_factory.mktemp("BLINK")
    for task in TASK_NAMES:
        write_split(root, task, "val", generate_rows(task, 24, seed=7, split="val"))
    return root


def _cell_args(root: Path, checkpoint: str) -> list[str]:
    return ["model=qwen", f"model.checkpoint={checkpoint}", "source_task=Counting", "experiment=test", "data=blink",
            f"data.root={root}", f"targets=[{','.join(TARGETS)}]"]


@pytest.fixture(scope="module")
def holdout_cell(blink_root, tiny_checkpoints, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    run = run_cli(_cell_args(blink_root, tiny_checkpoints["qwen"]), outputs)
    assert run.returncode == 0, run.stderr[-3000:]
    return outputs / "test" / "cells" / "qwen" / "Counting" / "seed=0", run


@pytest.mark.slow   # one real cell
def test_without_train_root_val_is_split_by_idx_hash_recorded_and_announced(blink_root, holdout_cell) -> None:
    cell, run = holdout_cell
    log = run.stdout + run.stderr
    assert "data.train_root is not set" in log and "split by idx hash" in log

    split = json.loads((cell / "split.json").read_text())
    assert split["holdout"] is True and split["train_fraction"] == 0.5
    train, held_out = holdout_split(read_split(blink_root, "Counting", "val"), 0.5, salt="Counting")
    assert split["train_idx"] == {"Counting": [q.idx for q in train]}
    assert len(train) == 12 and not {q.idx for q in train} & {q.idx for q in held_out}

    predictions = pl.read_parquet(cell / "predictions.parquet")
    for task in TARGETS:
        expected = [q.idx for q in holdout_split(read_split(blink_root, task, "val"), 0.5, salt=task)[1]][:EVAL_LIMIT]
        assert split["eval_idx"][task] == expected
        assert predictions.filter(pl.col("target_task") == task)["idx"].to_list() == expected
    assert not set(split["train_idx"]["Counting"]) & set(split["eval_idx"]["Counting"])
    scores = pl.read_parquet(cell / "scores.parquet")
    assert sorted(scores["target_task"]) == sorted(TARGETS) and set(scores["n"]) == {EVAL_LIMIT}


@pytest.mark.parametrize("root", ["/nonexistent/BLINK", None])
def test_a_missing_snapshot_is_a_one_line_error(root, tmp_path) -> None:
    args = ["model=qwen", "source_task=Counting", "experiment=test", "data=blink"]
    run = run_cli(args + ([f"data.root={root}"] if root else []), tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert f"data.root={root!r} is not a directory; expected a local BLINK snapshot" in run.stderr


def test_a_snapshot_without_some_tasks_names_them(blink_root, tmp_path) -> None:
    partial = tmp_path / "BLINK"
    for task in TASK_NAMES[2:]:
        shutil.copytree(blink_root / task, partial / task)
    run = run_cli(["model=qwen", "source_task=Counting", "data=blink", f"data.root={partial}"], tmp_path / "out")
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr
    assert f"lacks configs: {TASK_NAMES[0]}, {TASK_NAMES[1]}" in run.stderr


@pytest.mark.slow   # loads a model before the bad file is read
def test_a_bad_row_names_the_file_row_and_field(blink_root, tiny_checkpoints, tmp_path) -> None:
    bad = tmp_path / "BLINK"
    shutil.copytree(blink_root, bad)
    (file,) = split_files(bad, "Jigsaw", "val")
    frame = pl.read_parquet(file)
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("(Z)")).otherwise("answer")
                       .alias("answer")).write_parquet(file)
    run = run_cli(_cell_args(bad, tiny_checkpoints["qwen"]), tmp_path / "out")
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr
    assert f"{file}: row 3 (idx {frame['idx'][3]}): field answer: '(Z)' is not one of (A), (B)" in run.stderr
