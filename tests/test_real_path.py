"""A real-shape smoke grid through the real CLI: each family's real model config (`model=qwen2.5vl-7b` ...) with a
local real-class checkpoint (transfer.models.smoke) on a BLINK-layout snapshot of realistic JPEG/PNG images, a
`none` cell and a finetuned cell per family, in both eval modes, then the reducer; a finished sweep re-scored under
a corrected answer key by the rescore CLI."""
from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.data.prompts import answer_label
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
    return outputs, runs, root


@pytest.mark.parametrize("mode", ["loglik", "generate"])
def test_every_family_runs_its_cells_at_real_shapes(grids, mode):
    outputs, runs, _ = grids
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
                unparsed = predictions.group_by("target_task").agg((pl.col("predicted") == -1).mean().alias("share"))
                shares = scores.join(unparsed, on="target_task")
                assert (shares["unparsed_share"] - shares["share"]).abs().max() < 1e-12
            else:
                assert predictions["loglik"].list.len().min() >= 2
                assert predictions["text"].null_count() == len(predictions)
            assert (cell / "split.json").exists()   # BLINK val split by idx hash, recorded


@pytest.mark.parametrize("mode", ["loglik", "generate"])
def test_the_reducer_builds_pgf_from_either_mode_and_says_which(grids, mode):
    outputs, _, _ = grids
    reduce = outputs / f"real_{mode}" / "reduce"
    long = pl.read_parquet(reduce / "pgf.parquet")
    assert set(long["model"]) == set(REAL.values()) and long["pgf"].is_finite().all()
    setup = json.loads((reduce / "analysis.json").read_text())
    assert set(setup["models"]) == set(REAL.values())
    summary = json.loads((reduce / "reduce_summary.json").read_text())
    assert set(summary["eval_mode"].values()) == {mode} and summary["pgf_from"] == "scored"
    if mode == "generate":   # uncalibrated log-likelihoods do not exist: refused in one line
        run = run_cli([f"sweep=real_{mode}", "pgf_from=raw"], outputs, module="transfer.reduce")
        assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr[-2000:]
        assert "pgf_from=raw: model idefics3-8b, llava-1.5-7b, qwen2.5vl-7b scored by generation" in run.stderr


def test_the_rescore_cli_moves_scores_where_the_key_changed(grids, tmp_path):
    """A corrected key (a copy of the snapshot under a hub revision, Counting's answers moved one option on): in the
    new sweep Counting's gold, correct counts and file hash change, the other targets keep their scores, and every
    target records the key's hub revision."""
    outputs, _, root = grids
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    key = tmp_path / "datasets--BLINK" / "snapshots" / commit
    shutil.copytree(root, key)
    counting = pl.read_parquet(key / "Counting" / "val-00000-of-00001.parquet")
    moved = counting.with_columns(pl.Series("answer", [
        answer_label((ord(a[1]) - ord("A") + 1) % len(c)) for a, c in zip(counting["answer"], counting["choices"])]))
    moved.write_parquet(key / "Counting" / "val-00000-of-00001.parquet")
    run = run_cli(["sweep=real_loglik", f"key={key}", "out=real_loglik_rescored"], outputs, module="transfer.rescore")
    assert run.returncode == 0, run.stderr[-3000:]
    old, new = (_records(outputs / name, "scores") for name in ("real_loglik", "real_loglik_rescored"))
    scores = old.join(new, on=["model", "source_task", "seed", "target_task"], suffix="_new")
    changed, same = (scores.filter((pl.col("target_task") == "Counting") == moved) for moved in (True, False))
    # every target now records the key's hub revision; only Counting's files (their hash) changed
    assert changed["data_revision_new"].str.starts_with(f"rev:{commit[:12]} sha256:").all()
    assert (changed["data_revision_new"] != f"rev:{commit[:12]} " + changed["data_revision"]).all()
    assert same["data_revision_new"].to_list() == [f"rev:{commit[:12]} {r}" for r in same["data_revision"]]
    assert same["correct_new"].to_list() == same["correct"].to_list()
    before, after = (_records(outputs / name, "predictions").filter(pl.col("target_task") == "Counting")
                     for name in ("real_loglik", "real_loglik_rescored"))
    assert (after["gold"] != before["gold"]).all() and after["predicted"].to_list() == before["predicted"].to_list()
    recount = after.group_by("model", "source_task").agg((pl.col("predicted") == pl.col("gold")).sum())
    assert dict(((m, s), n) for m, s, n in recount.iter_rows()) == {
        (m, s): n for m, s, n in changed.select("model", "source_task", "correct_new").iter_rows()}
    summary = json.loads((outputs / "real_loglik_rescored" / "rescore.json").read_text())
    assert summary["changed_answers"] == {"Counting": before["idx"].n_unique()} and summary["revision_kept"] == []


def _records(sweep, name: str) -> pl.DataFrame:
    """Every cell's `name` record of a sweep, in a fixed order."""
    frames = [pl.read_parquet(p) for p in sorted((sweep / "cells").rglob(f"{name}.parquet"))]
    keys = ["model", "source_task", "target_task"] + (["idx"] if name == "predictions" else [])
    return pl.concat(frames, how="diagonal_relaxed").sort(keys)
