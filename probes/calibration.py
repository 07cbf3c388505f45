"""The effect of answer-prior calibration on a finished sweep, from its stored raw option log-likelihoods.

    python -m probes.calibration outputs/<sweep> [--n-boot 400]

Rescores every cell's predictions under each `eval.calibration` method, rebuilds PGF, the paired-bootstrap
intervals and the validation summary (planted statistics included for the synthetic suite), and prints one
row per (model, method): the evidence behind the default method. Nothing in the sweep is rewritten.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import polars as pl  # noqa: E402

from transfer.analysis.validation import is_synthetic, validation_summary  # noqa: E402
from transfer.embedded.planted import planted_table  # noqa: E402
from transfer.evaluate import CALIBRATIONS, predict  # noqa: E402
from transfer.pgf import pgf_long  # noqa: E402
from transfer.records import PREDICTIONS, read_sweep  # noqa: E402
from transfer.stats import cell_intervals  # noqa: E402
from transfer.tasks import TASKS  # noqa: E402

RUN = ["model", "source_task", "seed", "target_task"]
COLUMNS = ["base_above_chance", "diag_significant", "planted_positive_mean", "planted_negative_mean",
           "unplanted_mean", "planted_positive_p", "planted_negative_p", "planted_positive_p_pooled",
           "planted_negative_p_pooled", "seed_spearman",
           "significant_positive_cells", "significant_negative_cells"]


def rescore(predictions: pl.DataFrame, method: str) -> pl.DataFrame:
    """predictions with `correct` recomputed from `loglik` under `method`."""
    parts = []
    for _, run in predictions.sort("idx").group_by(RUN, maintain_order=True):
        predicted = predict(run["loglik"].to_list(), method)
        parts.append(run.with_columns(pl.Series("correct", [p == g for p, g in zip(predicted, run["gold"])])))
    return pl.concat(parts)


def scores_of(predictions: pl.DataFrame) -> pl.DataFrame:
    counts = predictions.group_by(RUN).agg(pl.len().alias("n"), pl.col("correct").sum().cast(pl.Int64))
    return counts.with_columns((pl.col("correct") / pl.col("n")).alias("accuracy"),
                               pl.col("target_task").replace_strict({t: s.chance for t, s in TASKS.items()},
                                                                    return_dtype=pl.Float64).alias("chance"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--n-boot", type=int, default=400)
    args = parser.parse_args()
    predictions = read_sweep(args.sweep, PREDICTIONS)
    if predictions.is_empty():
        raise SystemExit(f"no predictions under {args.sweep / 'cells'}")
    planted = planted_table() if is_synthetic(read_sweep(args.sweep)) else None
    rows = []
    for method in CALIBRATIONS:
        rescored = rescore(predictions, method)
        scores = scores_of(rescored)
        summary = validation_summary(cell_intervals(rescored, n_boot=args.n_boot), pgf_long(scores), scores, planted)
        rows += [{"model": m, "calibration": method, **{k: s.get(k) for k in COLUMNS}} for m, s in summary.items()]
    with pl.Config(tbl_cols=-1, tbl_width_chars=250, float_precision=3, tbl_rows=-1):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
