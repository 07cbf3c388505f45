"""The reducer: every finished cell of a sweep -> PGF matrices, intervals, analysis and report.

    python -m transfer.reduce                         # the most recent sweep under outputs/
    python -m transfer.reduce sweep=NAME              # a named sweep
    python -m transfer.reduce from_table=PATH [out=DIR]   # re-analyse a published PGF table

Reads whatever cells exist and lists the missing and failed ones instead of crashing.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # the bootstrap's many small products run faster single-threaded
from pathlib import Path

import hydra
import polars as pl
from omegaconf import DictConfig

from transfer.cli import CONF_DIR, check_overrides, one_line_errors, quiet_libraries, setup_logging
from transfer.spec import ReduceSpec, WandbSpec

log = logging.getLogger("transfer")


def latest_sweep(outputs: Path) -> Path:
    sweeps = [p for p in outputs.iterdir() if (p / "cells").is_dir()] if outputs.is_dir() else []
    if not sweeps:
        raise FileNotFoundError(f"no sweep with finished cells under {outputs}; "
                                "run `python -m transfer.run -m ...` first")
    return max(sweeps, key=lambda p: max(f.stat().st_mtime for f in (p / "cells").rglob("*")))


def missing_cells(scores: pl.DataFrame, failed: list[dict], unreadable: list[dict] = ()) -> pl.DataFrame:
    """Cells of the expected grid (models x [none + 13 tasks] x seeds seen) that have no usable scores: failed
    (FAILED.json), unreadable (a damaged record, named) or missing."""
    from transfer.tasks import BASELINE, TASK_NAMES

    have = set(scores.select("model", "source_task", "seed").unique().iter_rows())
    known = {**{f["cell"]: ("failed", f["error"]) for f in failed},
             **{u["cell"]: ("unreadable", u["error"]) for u in unreadable}}
    rows = []
    for model in sorted(scores["model"].unique()):
        for seed in sorted(scores["seed"].unique()):
            for source in [BASELINE, *TASK_NAMES]:
                if (model, source, seed) not in have:
                    key = next((c for c in known if c.endswith(f"/{model}/{source}/seed={seed}")), None)
                    status, error = known.get(key, ("missing", ""))
                    rows.append({"model": model, "source_task": source, "seed": seed, "status": status,
                                 "error": error})
    return pl.DataFrame(rows, schema={"model": pl.String, "source_task": pl.String, "seed": pl.Int64,
                                      "status": pl.String, "error": pl.String})


def write_matrices(long: pl.DataFrame, scores: pl.DataFrame, out: Path) -> list[Path]:
    """pgf_<model>.csv (13 x 13 seed means) and accuracy_<model>.csv (none + 13 rows)."""
    from transfer.atomic import write_bytes
    from transfer.pgf import wide
    from transfer.tasks import BASELINE, TASK_NAMES

    written = []
    for model in sorted(scores["model"].unique()):
        for name, frame in ((f"pgf_{model}.csv", wide(long, model, "pgf", TASK_NAMES)),
                            (f"accuracy_{model}.csv", wide(scores, model, "accuracy", [BASELINE, *TASK_NAMES]))):
            write_bytes(out / name, frame.write_csv().encode())
            written.append(out / name)
    return written


def raw_counts(scores: pl.DataFrame, predictions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores and predictions with the uncalibrated choices as the counted ones (`pgf_from=raw`)."""
    generated = sorted(scores.filter(pl.col("eval_mode") == "generate")["model"].unique()) if (
        "eval_mode" in scores.columns) else []
    if generated:
        raise ValueError(f"pgf_from=raw: model {', '.join(generated)} scored by generation (eval.mode=generate), "
                         "which has no log-likelihood to calibrate; expected pgf_from=scored")
    if "correct_raw" not in scores.columns or scores["correct_raw"].null_count():
        raise ValueError("pgf_from=raw: this sweep's cells do not record raw accuracies (cells of an older "
                         "version); expected pgf_from=scored")
    scores = scores.with_columns(pl.col("correct_raw").alias("correct"), pl.col("accuracy_raw").alias("accuracy"))
    raw = "predicted_raw" if "predicted_raw" in predictions.columns else "predicted"
    return scores, predictions.with_columns((pl.col(raw) == pl.col("gold")).alias("correct"))


def reduce_sweep(sweep_dir: Path, wandb_cfg: WandbSpec | None = None, analysis: dict | None = None,
                 n_boot: int = 1000, pgf_from: str = "scored", analysis_on: str = "observed") -> dict:
    """Build every reduce output of `sweep_dir` into `sweep_dir/reduce/`; returns a short summary.

    A partial grid is completed (`complete_partial_grid`); `analysis_on` (observed | completed) says which matrix
    the analysis reads."""
    from transfer.analysis import analyze
    from transfer.analysis.validation import write_validation
    from transfer.atomic import write_json, write_parquet
    from transfer.pgf import check_consistent, pgf_long
    from transfer.records import PREDICTIONS, failed_cells, read_sweep, unreadable_cells
    from transfer.stats import cell_intervals
    from transfer.tasks import BASELINE

    scores = read_sweep(sweep_dir)
    if scores.is_empty():
        raise FileNotFoundError(f"no finished cells under {sweep_dir / 'cells'}; nothing to reduce")
    check_consistent(scores)
    predictions = read_sweep(sweep_dir, PREDICTIONS)
    if pgf_from == "raw":
        scores, predictions = raw_counts(scores, predictions)
    out = sweep_dir / "reduce"
    long = pgf_long(scores)
    write_parquet(long, out / "pgf.parquet")
    files = write_matrices(long, scores, out)
    holes = missing_cells(scores, failed_cells(sweep_dir), unreadable_cells(sweep_dir))
    write_parquet(holes, out / "missing.parquet")
    for row in holes.iter_rows(named=True):
        log.warning("%s cell %s/%s/seed=%s %s", row["status"], row["model"], row["source_task"], row["seed"],
                    row["error"])
    modes = (scores.group_by("model").agg(pl.col("eval_mode").drop_nulls().first()).sort("model")
             if "eval_mode" in scores.columns else pl.DataFrame({"model": [], "eval_mode": []}))
    setup = {"sweep": sweep_dir.name, "cells": scores.select("model", "source_task", "seed").unique().height,
             "missing_cells": holes.height, "models": sorted(scores["model"].unique()),
             "eval_mode": {m: mode or "loglik" for m, mode in modes.iter_rows()}, "pgf_from": pgf_from}
    summary = {**setup, "reduce_dir": str(out), "missing": holes.to_dicts()}
    with_base = sorted(long["model"].unique())
    if not with_base:
        log.warning("no model has a finished baseline cell (source_task=%s): PGF needs it; wrote accuracies only",
                    BASELINE)
        write_json(summary, out / "reduce_summary.json")
        return summary
    intervals = cell_intervals(predictions.filter(pl.col("model").is_in(with_base)), n_boot=n_boot)
    write_parquet(intervals, out / "pgf_cells.parquet")
    based = scores.filter(pl.col("model").is_in(with_base))
    write_validation(intervals, long, based, out)   # summary.json
    accuracy = based.select("model", "source_task", "target_task", "seed", "accuracy", "chance")
    pgf, predicted, not_completed = complete_partial_grid(long, out, analysis_on, sorted(scores["model"].unique()))
    if not_completed:
        setup["not_completed"] = summary["not_completed"] = not_completed
    result = analyze(pgf, out, intervals=intervals, accuracy=accuracy, setup={**setup, "analysis_on": analysis_on},
                     predicted=predicted, **(analysis or {}))
    write_json(summary, out / "reduce_summary.json")
    if wandb_cfg:
        _log_reduce(wandb_cfg, sweep_dir, scores, long, intervals, files, result, setup)
    log.info("reduced %d cells of %s into %s (%d missing)", setup["cells"], sweep_dir.name, out, holes.height)
    return summary


def complete_partial_grid(long: pl.DataFrame, out: Path, analysis_on: str, models: list[str]
                          ) -> tuple[pl.DataFrame, pl.DataFrame | None, dict[str, str]]:
    """(PGF frame to analyse, predicted cells or None, {model: why it is not completed}). A grid missing some
    (model, source, seed) cell is completed (transfer.analysis.completion): completion.parquet (every cell: pgf,
    observed, interval), next_cells.csv (the cells to run next, most informative first), pgf_completed_<model>.csv
    and heatmap_completed_<model>.png (predicted cells outlined). With analysis_on=completed the analysis reads the
    completed matrix, else the observed cells. A model of the sweep (`models`) without one observed PGF row cannot
    be completed: one warning line names it and the returned dict (reduce_summary.json) says why."""
    from transfer.analysis import plot_heatmap, predicted_mask
    from transfer.analysis.completion import complete, completed_pgf, next_cells
    from transfer.analysis.tables import seed_mean_matrix
    from transfer.atomic import write_bytes, write_parquet
    from transfer.tasks import TASK_NAMES

    observed = long.select("model", "source_task", "target_task", pl.col("seed").cast(pl.String), "pgf")
    without = [m for m in models if m not in set(observed["model"])]
    not_completed = {m: "no observed PGF row (no finished finetuned cell beside its none cell); run at least one "
                        "source cell of it" for m in without}
    if without:
        log.warning("not completed: %s: no observed PGF row; run at least one source cell of each (and its none "
                    "cell)", ", ".join(without))
    runs = observed.select("model", "source_task", "seed").unique()
    seeds = runs.group_by("model").agg(pl.col("seed").n_unique())
    if runs.height == len(TASK_NAMES) * seeds["seed"].sum():
        return observed, None, not_completed
    if sorted(observed["target_task"].unique()) != sorted(TASK_NAMES):
        log.warning("partial grid not completed: completion needs every cell to evaluate all %d tasks", len(TASK_NAMES))
        return observed, None, not_completed
    completion = complete(observed, tasks=TASK_NAMES)
    write_parquet(completion, out / "completion.parquet")
    ranked = next_cells(observed, tasks=TASK_NAMES)
    ranked = ranked.with_columns(pl.concat_str("model", "source_task", "seed", separator="/").alias("cell"))
    write_bytes(out / "next_cells.csv", ranked.write_csv().encode())
    predicted = completion.filter(~pl.col("observed")).select("model", "source_task", "target_task")
    filled = completed_pgf(observed, completion).drop("predicted")
    for model in sorted(filled["model"].unique()):
        tasks, mean = seed_mean_matrix(filled, model)
        write_bytes(out / f"pgf_completed_{model}.csv", pl.DataFrame(mean, schema=tasks, orient="row").insert_column(
            0, pl.Series("source_task", tasks)).write_csv().encode())
        plot_heatmap(mean, tasks, f"{model}: completed PGF, source → target", out / f"heatmap_completed_{model}.png",
                     predicted_mask=predicted_mask(predicted, model, tasks))
    log.info("partial grid: %d of %d cells predicted (reduce/completion.parquet); the next cells to run are in "
             "reduce/next_cells.csv; analysis on the %s matrix", predicted.height, completion.height, analysis_on)
    return ((filled, predicted) if analysis_on == "completed" else (observed, None)) + (not_completed,)


def _png_paths(figures) -> list[Path]:
    """Every PNG among the (nested) figure paths that `analyze` returns."""
    if isinstance(figures, dict):
        return [p for value in figures.values() for p in _png_paths(value)]
    return [Path(figures)] if str(figures).endswith(".png") else []


def _log_reduce(wandb_cfg: WandbSpec, sweep_dir: Path, scores: pl.DataFrame, long: pl.DataFrame,
                intervals: pl.DataFrame, files: list[Path], result: dict, setup: dict) -> None:
    """The reduce W&B run (tables, figures, report, its outputs as an artifact made from the cells' artifacts),
    then each cell run's summary gets its PGF (resumed by its deterministic id). Never raises (transfer.tracking)."""
    from transfer.tracking import artifact_name, never_fatal, pgf_summaries, wandb_run

    out, sweep = sweep_dir / "reduce", sweep_dir.name
    with never_fatal("reduce run"):
        cells = sorted(set(scores.select("model", "source_task", "seed").iter_rows()))
        inputs = [artifact_name(sweep, m, s, k) for m, s, k in cells]
        with wandb_run(wandb_cfg, sweep_dir=sweep_dir, group=sweep, job_type="reduce", name="reduce",
                       run_key="reduce", config=setup, tags=["reduce"]) as run:
            for name in inputs:
                run.use_artifact(name)
            run.log_table("pgf", long)
            for path in files:
                run.log_table(path.stem, lambda path=path: pl.read_csv(path))
            for name in ("scores", "cliques", "personas", "selection"):
                run.log_table(f"analysis/{name}", result["tables"][name])
            run.log_images("figures", _png_paths(result["figures"]))
            run.log_html("report", out / "report.html")
            outputs = [out / name for name in ("pgf.parquet", "pgf_cells.parquet", "analysis.json", "report.html",
                                               "missing.parquet", "summary.json") if (out / name).exists()]
            run.log_artifact(f"reduce-{sweep}", "reduce-results", outputs,
                             {"inputs": inputs, "lineage": "offline: inputs listed here" if run.offline else "used"})
    with never_fatal("cell runs' PGF summaries"):
        for (model, source, seed), values in pgf_summaries(long, intervals).items():
            name = f"{model}/{source}/seed{seed}"
            with wandb_run(wandb_cfg, sweep_dir=sweep_dir, group=sweep, job_type="cell", name=name,
                           run_key=name, config={}) as cell:
                cell.summarize(values)


def reduce_table(path: Path, out: Path, analysis: dict | None = None) -> dict:
    """Re-analyse a PGF table (the paper's layout or this project's pgf.parquet) into `out`."""
    from transfer.analysis import analyze
    from transfer.analysis.tables import read_pgf_table

    pgf = read_pgf_table(path)
    return analyze(pgf, out, setup={"table": str(path)}, **(analysis or {}))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="reduce")
@one_line_errors
def main(cfg: DictConfig) -> None:
    spec = ReduceSpec.from_config(cfg)
    analysis = dataclasses.asdict(spec.analysis)
    if spec.from_table:
        table = Path(spec.from_table)
        out = Path(spec.out) if spec.out else table.parent / f"{table.stem}_analysis"
        reduce_table(table, out, analysis)
        log.info("analysis of %s written to %s", table, out)
        return
    outputs = Path(spec.paths.outputs)
    sweep_dir = outputs / spec.sweep if spec.sweep else latest_sweep(outputs)
    reduce_sweep(sweep_dir, spec.wandb, analysis, spec.n_boot, spec.pgf_from, spec.analysis_on)


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "reduce")
    quiet_libraries()
    setup_logging()
    main()
