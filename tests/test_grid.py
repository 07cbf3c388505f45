"""End to end: the real CLI runs the whole embedded grid (small test config), then re-runs it."""
import math

import polars as pl
import pytest

from tests.helpers import run_cli
from transfer.tasks import BASELINE, TASK_NAMES

MODELS = ["llava", "qwen", "idefics"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    first = run_cli(["-m", "model=llava,qwen,idefics", "source_task=glob(*)", "experiment=test"], outputs)
    assert first.returncode == 0, first.stderr[-3000:]
    return outputs / "test", first


def test_three_finite_13x13_matrices(grid):
    sweep, _ = grid
    for model in MODELS:
        matrix = pl.read_csv(sweep / "reduce" / f"pgf_{model}.csv")
        assert matrix.columns == ["source_task", *TASK_NAMES]
        assert matrix["source_task"].to_list() == TASK_NAMES
        values = matrix.drop("source_task").to_numpy()
        assert values.shape == (13, 13) and all(math.isfinite(v) for v in values.ravel())
        accuracy = pl.read_csv(sweep / "reduce" / f"accuracy_{model}.csv")
        assert accuracy["source_task"].to_list() == [BASELINE, *TASK_NAMES]
        assert (sweep / "reduce" / f"heatmap_{model}.png").stat().st_size > 0
    assert (sweep / "reduce" / "analysis.json").exists() and (sweep / "reduce" / "report.html").exists()
    assert pl.read_parquet(sweep / "reduce" / "missing.parquet").is_empty()


def test_validation_summary_and_planted_table(grid):
    """summary.json: every family, numbers per key, counts within the grid; planted.parquet for the synthetic suite."""
    import json

    from transfer.embedded.planted import planted_table

    sweep, _ = grid
    summary = json.loads((sweep / "reduce" / "summary.json").read_text())
    assert sorted(summary) == sorted(MODELS)
    for values in summary.values():
        assert values["n_seeds"] == 1 and values["off_diagonal_cells"] == 13 * 12
        assert 0 <= values["base_above_chance"] <= 13 and 0 <= values["diag_significant"] <= 13
        assert 0 <= values["planted_positive_p"] <= 1 and 0 <= values["planted_negative_p"] <= 1
        assert values["seed_spearman"] is None   # one seed: no halves to compare
    assert pl.read_parquet(sweep / "reduce" / "planted.parquet").equals(planted_table())
    cells = pl.read_parquet(sweep / "reduce" / "pgf_cells.parquet")
    assert {"pgf_mean", "pgf_std", "ci_low", "ci_high", "n_seeds", "dacc_mean", "dacc_low", "dacc_high"} <= set(
        cells.columns)
    assert cells.height == 3 * 13 * 13 and (cells["ci_low"] <= cells["ci_high"]).all()


def test_pgf_uses_the_none_baseline(grid):
    sweep, _ = grid
    cells = sweep / "cells" / "qwen"
    base = pl.read_parquet(cells / BASELINE / "seed=0" / "scores.parquet")
    tuned = pl.read_parquet(cells / "Jigsaw" / "seed=0" / "scores.parquet")
    long = pl.read_parquet(sweep / "reduce" / "pgf.parquet").filter(model="qwen", source_task="Jigsaw")
    for target in TASK_NAMES:
        n, kb = base.filter(target_task=target).select("n", "correct").row(0)
        kf = tuned.filter(target_task=target)["correct"][0]
        assert long.filter(target_task=target)["pgf"][0] == pytest.approx((kf - kb) / max(n - kb, 1))


def test_records(grid):
    sweep, _ = grid
    for model in MODELS:
        for source in [BASELINE, *TASK_NAMES]:
            cell = sweep / "cells" / model / source / "seed=0"
            scores = pl.read_parquet(cell / "scores.parquet")
            assert sorted(scores["target_task"]) == sorted(TASK_NAMES)
            assert scores["config_hash"].n_unique() == 1 and scores["git_commit"][0]
            assert ((scores["accuracy"] >= 0) & (scores["accuracy"] <= 1)).all()
            predictions = pl.read_parquet(cell / "predictions.parquet")
            assert predictions.height == scores["n"].sum()
            assert {"idx", "target_task", "gold", "predicted", "correct", "loglik"} <= set(predictions.columns)
            assert (source == BASELINE) != (cell / "adapter" / "adapter_config.json").exists()


def test_wandb_offline_runs_under_the_sweep(grid):
    sweep, _ = grid
    runs = sorted((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 3 * 14 + 1                      # one per cell, plus the reduce run
    assert all(list(r.glob("run-*.wandb")) for r in runs)


def test_second_run_skips_every_finished_cell(grid):
    sweep, _ = grid
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("cells/*/*/seed=0/scores.parquet")}
    again = run_cli(["-m", "model=llava,qwen,idefics", "source_task=glob(*)", "experiment=test"], sweep.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("skip finished cell") + again.stdout.count("skip finished cell") == 42
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_changed_config_refuses_to_mix_and_keeps_results(grid):
    sweep, _ = grid
    scores = sweep / "cells" / "llava" / "Counting" / "seed=0" / "scores.parquet"
    before = scores.read_bytes()
    out = run_cli(["model=llava", "source_task=Counting", "experiment=test", "train.steps=5"], sweep.parent)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "overwrite=true" in lines[0]
    assert scores.read_bytes() == before


def test_cells_side_by_side_match_the_sequential_grid(grid):
    """hydra.launcher.jobs=2: two worker processes run cells at the same time, with the sequential results."""
    import json

    sweep, _ = grid
    sources = [BASELINE, "Counting", "Jigsaw"]
    out = run_cli(["-m", "model=qwen", f"source_task={','.join(sources)}", "experiment=test", "sweep=side_by_side",
                   "hydra.launcher.jobs=2"], sweep.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3 cells, 2 at a time" in out.stderr + out.stdout
    parallel = sweep.parent / "side_by_side" / "cells" / "qwen"
    spans = []
    for source in sources:
        timings = json.loads((parallel / source / "seed=0" / "timings.json").read_text())
        spans.append((timings["started_at"], timings["started_at"] + timings["wall"]))
        mine, theirs = (pl.read_parquet(root / source / "seed=0" / "predictions.parquet").drop("sweep")
                        for root in (parallel, sweep / "cells" / "qwen"))
        assert mine.drop("loglik").equals(theirs.drop("loglik"))
        assert [round(x, 4) for row in mine["loglik"] for x in row] == [round(x, 4) for row in theirs["loglik"]
                                                                         for x in row]
    (a0, a1), (b0, b1) = spans[:2]
    assert a0 < b1 and b0 < a1   # the first two cells overlap in time


def test_a_none_cell_of_another_seed_copies_the_finished_baseline(grid):
    """The base model does not depend on the seed: none/seed=1 copies none/seed=0 (same config and base)."""
    import json

    from transfer.cell import _baseline_of_another_seed

    sweep, _ = grid
    cells = sweep / "cells" / "qwen" / BASELINE
    out = run_cli(["model=qwen", f"source_task={BASELINE}", "seed=1", "experiment=test"], sweep.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = (pl.read_parquet(cells / f"seed={s}" / "predictions.parquet") for s in (0, 1))
    assert second["seed"].unique().to_list() == [1]
    assert second.drop("seed").equals(first.drop("seed"))
    scores = pl.read_parquet(cells / "seed=1" / "scores.parquet")
    assert scores.drop("seed", "eval_seconds", "created_at").equals(
        pl.read_parquet(cells / "seed=0" / "scores.parquet").drop("seed", "eval_seconds", "created_at"))
    assert scores["eval_seconds"].max() == 0.0                       # nothing was evaluated again
    assert json.loads((cells / "seed=1" / "timings.json").read_text()).get("model_load", 0.0) == 0.0
    chash, checkpoint = scores["config_hash"][0], scores["checkpoint"][0]
    assert _baseline_of_another_seed(cells / "seed=2", chash, checkpoint, "batch") is not None
    assert _baseline_of_another_seed(cells / "seed=2", "another-config", checkpoint, "batch") is None
    assert _baseline_of_another_seed(cells / "seed=2", chash, "another/base", "batch") is None
    again = run_cli(["model=qwen", f"source_task={BASELINE}", "seed=1", "experiment=test", "overwrite=true"],
                    sweep.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    recomputed = pl.read_parquet(cells / "seed=1" / "scores.parquet")
    assert recomputed["eval_seconds"].min() > 0.0                    # overwrite=true evaluates the base again
    assert recomputed["correct"].to_list() == scores["correct"].to_list()
