"""The Perfection Gap Factor (paper.md §1) from counts, and the matrices built from it (pure functions).

    PGF(i -> j) = (k_ft - k_base) / (n - k_base)        U = 1, from correct counts on the same n questions

When the base model already answers every question (n = k_base), the gap is taken as one question,
which keeps every value finite; PGF is then bounded below by -(n - 1), as in the paper.
"""
from __future__ import annotations

import polars as pl

from transfer.tasks import BASELINE, TASK_NAMES


class InconsistentSweepError(ValueError):
    """Cells of one model computed with different configurations or question sets."""


def pgf_from_counts(correct: pl.Expr, base_correct: pl.Expr, n: pl.Expr) -> pl.Expr:
    gap = pl.max_horizontal(n - base_correct, pl.lit(1))
    return (correct - base_correct) / gap


def check_consistent(scores: pl.DataFrame) -> None:
    """One config_hash per model; a one-line error otherwise (cells never mix silently)."""
    hashes = scores.group_by("model").agg(pl.col("config_hash").unique().sort()).sort("model")
    for model, values in hashes.iter_rows():
        if len(values) > 1:
            raise InconsistentSweepError(
                f"cells of model {model!r} were computed with different configs (config_hash {', '.join(values)}); "
                "recompute the stale cells with overwrite=true or keep the configs in separate sweeps")


def baseline_scores(scores: pl.DataFrame) -> pl.DataFrame:
    """The base model's scores per (model, seed, target); seeds without a `none` cell use the lowest seed's."""
    base = scores.filter(pl.col("source_task") == BASELINE).select(
        "model", "seed", "target_task", pl.col("n").alias("base_n"), pl.col("correct").alias("base_correct"))
    fallback = base.sort("seed").group_by("model", "target_task", maintain_order=True).first().drop("seed")
    seeds = scores.select("model", "seed").unique()
    targets = base.select("model", "target_task").unique()
    grid = seeds.join(targets, on="model")
    matched = grid.join(base, on=["model", "seed", "target_task"], how="left")
    return matched.join(fallback, on=["model", "target_task"], how="left", suffix="_fb").select(
        "model", "seed", "target_task",
        pl.coalesce("base_n", "base_n_fb").alias("base_n"),
        pl.coalesce("base_correct", "base_correct_fb").alias("base_correct"))


def pgf_long(scores: pl.DataFrame) -> pl.DataFrame:
    """One row per (model, source_task, target_task, seed) of the finetuned cells, with PGF from counts."""
    base = baseline_scores(scores)
    ft = scores.filter(pl.col("source_task") != BASELINE)
    joined = ft.join(base, on=["model", "seed", "target_task"], how="inner")
    mismatch = joined.filter(pl.col("n") != pl.col("base_n"))
    if mismatch.height:
        row = mismatch.row(0, named=True)
        raise InconsistentSweepError(
            f"cell {row['model']}/{row['source_task']}/seed={row['seed']} scored {row['n']} questions of "
            f"{row['target_task']} but the baseline scored {row['base_n']}; both must use the same questions")
    return joined.select(
        "model", "source_task", "target_task", "seed", "n",
        (pl.col("base_correct") / pl.col("n")).alias("base_accuracy"), "accuracy",
        pgf_from_counts(pl.col("correct"), pl.col("base_correct"), pl.col("n")).alias("pgf"),
    ).sort("model", "source_task", "target_task", "seed")


def wide(long: pl.DataFrame, model: str, value: str, rows: list[str], first: str = "source_task") -> pl.DataFrame:
    """Seed-mean `value` of one model as a matrix: a row per name in `rows`, a column per target task."""
    mean = (long.filter(pl.col("model") == model).group_by("source_task", "target_task")
            .agg(pl.col(value).mean()))
    cells = {(s, t): v for s, t, v in mean.iter_rows()}
    return pl.DataFrame({first: rows, **{t: [cells.get((s, t)) for s in rows] for t in TASK_NAMES}},
                        schema={first: pl.String, **{t: pl.Float64 for t in TASK_NAMES}})
