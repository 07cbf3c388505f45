"""A partial embedded grid through the real CLI (grid.fraction): the chosen cells and every none cell run, and the
reducer completes the matrix (completion.parquet, next_cells.csv, predicted cells outlined) and says which matrix
its analysis read."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.helpers import compose_spec, run_cli
from transfer.tasks import BASELINE, TASK_NAMES

SOURCES = ["Counting", "Jigsaw", "Art_Style", "Relative_Depth"]
FAST = ["experiment=test", "pretrain.steps=2", "pretrain.size_per_kind=8"]   # a barely trained base: fast


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, object]:
    outputs = tmp_path_factory.mktemp("outputs")
    args = ["model=qwen", f"source_task={','.join([BASELINE, *SOURCES])}", *FAST, "grid.fraction=0.5"]
    run = run_cli(["-m", *args], outputs)
    assert run.returncode == 0, run.stderr[-3000:]
    return outputs / "test", run


def _run_cells(sweep_dir: Path) -> set[str]:
    return {p.parent.parent.name for p in (sweep_dir / "cells" / "qwen").glob("*/seed=0/scores.parquet")}


def test_the_none_cell_and_half_the_sources_run(sweep) -> None:
    from hydra_plugins.transfer_launchers.grid import in_grid

    sweep_dir, _ = sweep
    ran = _run_cells(sweep_dir)
    assert BASELINE in ran and len(ran - {BASELINE}) == 2 and ran <= {BASELINE, *SOURCES}
    base = compose_spec("model=qwen", *FAST, "grid.fraction=0.5", f"paths.outputs={sweep_dir.parent}")
    specs = [dataclasses.replace(base, source_task=dataclasses.replace(base.source_task, name=s))
             for s in [BASELINE, *SOURCES]]
    assert {s.source for s, keep in zip(specs, in_grid(specs)) if keep} == ran   # the grid's own choice


def test_the_reducer_predicts_the_missing_rows_with_intervals_and_ranks_the_next_cells(sweep) -> None:
    sweep_dir, _ = sweep
    out, ran = sweep_dir / "reduce", _run_cells(sweep_dir) - {BASELINE}
    completion = pl.read_parquet(out / "completion.parquet")
    assert completion.height == 13 * 13
    observed = completion.filter(pl.col("observed"))
    assert set(observed["source_task"]) == ran and observed.height == 2 * 13
    predicted = completion.filter(~pl.col("observed"))
    assert predicted["ci_low"].null_count() == 0 and (predicted["ci_low"] <= predicted["pgf"]).all()
    assert (predicted["pgf"] <= predicted["ci_high"]).all() and (predicted["ci_high"] > predicted["ci_low"]).all()
    ranked = pl.read_csv(out / "next_cells.csv", schema_overrides={"seed": pl.String})
    assert set(ranked["source_task"]) == set(TASK_NAMES) - ran and ranked["rank"].to_list() == list(range(1, 12))
    assert ranked["cell"][0] == f"qwen/{ranked['source_task'][0]}/0"
    completed = pl.read_csv(out / "pgf_completed_qwen.csv")
    assert completed.shape == (13, 14) and completed["source_task"].to_list() == TASK_NAMES
    assert np.isfinite(completed.drop("source_task").to_numpy()).all()
    assert (out / "heatmap_completed_qwen.png").stat().st_size > 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["matrix"] == {"analysed": "observed", "predicted_cells": 0}
    assert "rest on the observed cells only" in (out / "report.html").read_text()


def test_the_analysis_can_read_the_completed_matrix(sweep) -> None:
    from transfer.reduce import reduce_sweep

    sweep_dir, _ = sweep
    reduce_sweep(sweep_dir, analysis={"persona_permutations": 50}, n_boot=50, analysis_on="completed")
    analysis = json.loads((sweep_dir / "reduce" / "analysis.json").read_text())
    assert analysis["matrix"] == {"analysed": "completed", "predicted_cells": 11 * 13}
    assert len(analysis["models"]["qwen"]["transferability"]) == 13          # every source row, predicted or run
    assert "rest on the completed matrix: 143 cells" in (sweep_dir / "reduce" / "report.html").read_text()


def test_a_model_without_an_observed_row_is_named_not_left_out_silently(sweep, tmp_path, caplog) -> None:
    """A second model of the sweep that ran only its none cell cannot be completed: the reducer says so in one
    warning line and records it in reduce_summary.json and the report's setup."""
    import logging
    import shutil

    from transfer.reduce import reduce_sweep

    sweep_dir, _ = sweep
    copy = tmp_path / "test"
    shutil.copytree(sweep_dir / "cells", copy / "cells")
    llava = copy / "cells" / "llava" / BASELINE / "seed=0"
    llava.mkdir(parents=True)
    for record in ("scores.parquet", "predictions.parquet"):
        (pl.read_parquet(copy / "cells" / "qwen" / BASELINE / "seed=0" / record)
         .with_columns(pl.lit("llava").alias("model")).write_parquet(llava / record))
    with caplog.at_level(logging.WARNING, logger="transfer"):
        summary = reduce_sweep(copy, analysis={"persona_permutations": 50}, n_boot=50)
    named = [r.getMessage() for r in caplog.records if "not completed" in r.getMessage()]
    assert len(named) == 1 and "llava" in named[0] and "\n" not in named[0]
    recorded = json.loads((copy / "reduce" / "reduce_summary.json").read_text())
    assert list(recorded["not_completed"]) == ["llava"] == list(summary["not_completed"])
    assert "no observed PGF row" in recorded["not_completed"]["llava"]
    assert set(pl.read_parquet(copy / "reduce" / "completion.parquet")["model"]) == {"qwen"}   # qwen completed
    assert "not_completed" in (copy / "reduce" / "report.html").read_text()


def test_a_full_grid_beside_a_model_without_rows_still_names_it(tmp_path) -> None:
    from tests.helpers import long_frame
    from transfer.reduce import complete_partial_grid

    observed = long_frame(np.random.default_rng(0).normal(size=(13, 13)), model="qwen")
    pgf, predicted, not_completed = complete_partial_grid(observed, tmp_path, "observed", ["llava", "qwen"])
    assert predicted is None and pgf.height == observed.height and list(not_completed) == ["llava"]
    assert not (tmp_path / "completion.parquet").exists()


def test_the_heatmap_outlines_predicted_cells(tmp_path) -> None:
    from transfer.analysis.figures import plot_heatmap

    matrix, tasks = np.full((3, 3), 0.2), TASK_NAMES[:3]
    mask = np.zeros((3, 3), dtype=bool)
    plain = plot_heatmap(matrix, tasks, "m", tmp_path / "plain.png").read_bytes()
    assert plot_heatmap(matrix, tasks, "m", tmp_path / "none.png", predicted_mask=mask).read_bytes() == plain
    mask[1] = True
    assert plot_heatmap(matrix, tasks, "m", tmp_path / "marked.png", predicted_mask=mask).read_bytes() != plain
