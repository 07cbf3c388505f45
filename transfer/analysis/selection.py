"""PGF-guided data-selection advice (the paper's section on data selection): for each target, the other tasks
worth mixing in, best first."""
from __future__ import annotations

import polars as pl

SELECTION_SCHEMA = {
    "model": pl.String, "target_task": pl.String, "rank": pl.Int64, "source_task": pl.String,
    "pgf_mean": pl.Float64, "pgf_std": pl.Float64, "seeds_positive": pl.Int64, "n_seeds": pl.Int64,
    "ci_low": pl.Float64, "ci_high": pl.Float64,
}


def selection_advice(pgf: pl.DataFrame, threshold: float = 0.1, intervals: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per model and target, the sources (≠ target) whose seed-mean PGF toward it exceeds `threshold`, ranked.

    seeds_positive counts the runs with PGF > 0; ci_low / ci_high come from `intervals` (cell_intervals)
    when given, else null. A source whose ci_low > 0 helps beyond question-sampling noise.
    """
    cells = (pgf.filter(pl.col("source_task") != pl.col("target_task"))
             .group_by("model", "source_task", "target_task")
             .agg(pl.col("pgf").mean().alias("pgf_mean"), pl.col("pgf").std(ddof=1).alias("pgf_std"),
                  (pl.col("pgf") > 0).sum().cast(pl.Int64).alias("seeds_positive"),
                  pl.len().cast(pl.Int64).alias("n_seeds"))
             .filter(pl.col("pgf_mean") > threshold))
    if intervals is not None and intervals.height:
        cells = cells.join(intervals.select("model", "source_task", "target_task", "ci_low", "ci_high"),
                           on=["model", "source_task", "target_task"], how="left")
    else:
        cells = cells.with_columns(pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high"))
    ranked = cells.sort("model", "target_task", "pgf_mean", "source_task", descending=[False, False, True, False])
    rank = pl.int_range(1, pl.len() + 1).over("model", "target_task").cast(pl.Int64)
    ranked = ranked.with_columns(rank.alias("rank"))
    return ranked.select(list(SELECTION_SCHEMA)).cast(SELECTION_SCHEMA)


def advice_by_target(advice: pl.DataFrame, model: str) -> dict[str, list[dict]]:
    """{target: [{source, pgf}, …]} for one model, in rank order (the JSON / report form)."""
    out: dict[str, list[dict]] = {}
    for row in advice.filter(pl.col("model") == model).iter_rows(named=True):
        out.setdefault(row["target_task"], []).append(
            {"source": row["source_task"], "pgf": row["pgf_mean"], "std": row["pgf_std"],
             "seeds_positive": row["seeds_positive"], "n_seeds": row["n_seeds"],
             "ci_low": row["ci_low"], "ci_high": row["ci_high"]})
    return out
