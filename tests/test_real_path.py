"""A real-shape smoke grid through the real CLI: each family's real model config (`model=qwen2.5vl-7b` ...) with a
local real-class checkpoint (transfer.models.smoke) on a BLINK-layout snapshot of realistic JPEG/PNG images, a
`none` cell and a finetuned cell per family, in both eval modes, then the reducer."""
from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.models.smoke import build_smoke, write_blink_fixture

REAL = {"llava": "llava-1.5-7b", "qwen": "qwen2.5vl-7b", "idefics": "idefics3-8b"}
TARGETS = ["Counting", "Art_Style", "Forensic_Detection"]   # 1, 3 and 4 images a question


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """One multirun per eval mode: the three real model configs x {none, Counting}, each model's checkpoint the
    family's smoke checkpoint (`model.checkpoint` resolves per job), two cells at a time."""
    root = write_blink_fixture(tmp_path_factory.mktemp("BLINK"), per_task=4)
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    for family in REAL:
        build_smoke(family, checkpoints / family)
    outputs = tmp_path_factory.mktemp("outputs")
    runs = {}
    for mode in ("loglik", "generate"):
        run = run_cli(["-m", f"model={','.join(REAL.values())}", f"model.checkpoint={checkpoints}/${{model.family}}",
                       "model.dtype=float32", "source_task=none,Counting", "experiment=test", "data=blink",
                       f"data.root={root}", f"targets=[{','.join(TARGETS)}]", f"eval.mode={mode}",
                       "eval.max_new_tokens=4", "eval.batch_tokens=8192", f"sweep=real_{mode}",
                       "hydra.launcher.jobs=2"], outputs)
        runs.update({(mode, family): run for family in REAL})
    return outputs, runs


@pytest.mark.parametrize("mode", ["loglik", "generate"])
def test_every_family_runs_its_cells_at_real_shapes(grids, mode):
    outputs, runs = grids
    for family, model in REAL.items():
        run = runs[mode, family]
        assert run.returncode == 0, run.stderr[-3000:]
        for source in ("none", "Counting"):
            cell = outputs / f"real_{mode}" / "cells" / model / source / "seed=0"
            scores = pl.read_parquet(cell / "scores.parquet")
            assert sorted(scores["target_task"]) == sorted(TARGETS) and set(scores["eval_mode"]) == {mode}
            assert scores["data_revision"].str.starts_with("sha256:").all() and (scores["n"] == 2).all()
            predictions = pl.read_parquet(cell / "predictions.parquet")
            if mode == "generate":
                assert predictions["text"].null_count() == 0 and predictions["loglik"].null_count() == len(predictions)
                assert scores["unparsed"].sum() == int((predictions["predicted"] == -1).sum())
            else:
                assert predictions["loglik"].list.len().min() >= 2
                assert predictions["text"].null_count() == len(predictions)
            assert (cell / "split.json").exists()   # BLINK val split by idx hash, recorded


@pytest.mark.parametrize("mode", ["loglik", "generate"])
def test_the_reducer_builds_pgf_from_either_mode_and_says_which(grids, mode):
    import json

    outputs, _ = grids
    reduce = outputs / f"real_{mode}" / "reduce"
    long = pl.read_parquet(reduce / "pgf.parquet")
    assert set(long["model"]) == set(REAL.values()) and long["pgf"].is_finite().all()
    setup = json.loads((reduce / "analysis.json").read_text())
    assert set(setup["models"]) == set(REAL.values())
    summary = json.loads((reduce / "reduce_summary.json").read_text())
    assert set(summary["eval_mode"].values()) == {mode} and summary["pgf_from"] == "scored"
