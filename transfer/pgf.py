"""The Perfection Gap Factor (as the paper defines it) from counts, and the matrices built from it (pure functions).

    PGF(i -> j) = (k_ft - k_base) / (n - k_base)        U = 1, from correct counts on the same n questions

When the base model already answers every question (n = k_base), the gap is taken as one question,
which keeps every value finite; PGF is then bounded below by -(n - 1), as in the paper.

The base model does not depend on the finetuning seed: its results are those of the model's `none` cell of the
lowest seed (`base_rows`), for every seed (a `none` cell of another seed is a copy of it).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from transfer.tasks import BASELINE, TASK_NAMES


class InconsistentSweepError(ValueError):
    """Cells of one model computed with different configurations or question sets."""


def pgf_from_counts(k_ft, k_base, n) -> np.ndarray:
    """PGF = (k_ft - k_base) / (n - k_base) with U = 1, elementwise; a perfect base uses a gap of one question."""
    gap = np.asarray(n - np.asarray(k_base, dtype=float))
    return (np.asarray(k_ft, dtype=float) - k_base) / np.where(gap > 0, gap, 1.0)


def base_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The base model's rows of `frame` (scores or predictions): per model and target, the lowest seed's `none` cell."""
    base = frame.filter(pl.col("source_task") == BASELINE)
    return base.filter(pl.col("seed") == pl.col("seed").min().over("model", "target_task"))


def check_consistent(scores: pl.DataFrame) -> None:
    """One config_hash per model; a one-line error otherwise (cells never mix silently)."""
    hashes = scores.group_by("model").agg(pl.col("config_hash").unique().sort()).sort("model")
    for model, values in hashes.iter_rows():
        if len(values) > 1:
            raise InconsistentSweepError(
                f"cells of model {model!r} were computed with different configs (config_hash {', '.join(values)}); "
                "recompute the stale cells with overwrite=true or keep the configs in separate sweeps")


def pgf_long(scores: pl.DataFrame) -> pl.DataFrame:
    """One row per (model, source_task, target_task, seed) of the finetuned cells, with PGF from counts."""
    base = base_rows(scores).select("model", "target_task", pl.col("n").alias("base_n"),
                                    pl.col("correct").alias("base_correct"))
    ft = scores.filter(pl.col("source_task") != BASELINE)
    joined = ft.join(base, on=["model", "target_task"], how="inner")
    mismatch = joined.filter(pl.col("n") != pl.col("base_n"))
    if mismatch.height:
        row = mismatch.row(0, named=True)
        raise InconsistentSweepError(
            f"cell {row['model']}/{row['source_task']}/seed={row['seed']} scored {row['n']} questions of "
            f"{row['target_task']} but the baseline scored {row['base_n']}; both must use the same questions")
    pgf = pgf_from_counts(joined["correct"].to_numpy(), joined["base_correct"].to_numpy(), joined["n"].to_numpy())
    return joined.select(
        "model", "source_task", "target_task", "seed", "n",
        (pl.col("base_correct") / pl.col("n")).alias("base_accuracy"), "accuracy",
    ).with_columns(pl.Series("pgf", pgf, dtype=pl.Float64)).sort("model", "source_task", "target_task", "seed")


def wide(long: pl.DataFrame, model: str, value: str, rows: list[str], first: str = "source_task") -> pl.DataFrame:
    """Seed-mean `value` of one model as a matrix: a row per name in `rows`, a column per target task."""
    mean = (long.filter(pl.col("model") == model).group_by("source_task", "target_task")
            .agg(pl.col(value).mean()))
    cells = {(s, t): v for s, t, v in mean.iter_rows()}
    return pl.DataFrame({first: rows, **{t: [cells.get((s, t)) for s in rows] for t in TASK_NAMES}},
                        schema={first: pl.String, **{t: pl.Float64 for t in TASK_NAMES}})
