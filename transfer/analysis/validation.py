"""Per-model validation summary of a sweep (summary.json): does the grid measure anything, and what was planted?

For each model: how many targets the base model answers above chance (exact binomial test), how many diagonal
cells improve significantly, whether the planted positive / negative pairs of the synthetic suite
(transfer.embedded.planted) stand out from the unplanted ones of the same target (permutation tests
within target columns; the pooled test is kept for comparison), how well two halves
of the seeds agree (Spearman), and how many off-diagonal cells have an interval on one side of 0.
Every value is a number (None when undefined: JSON null); lists of task names sit under `*_tasks` keys.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import polars as pl

from transfer.pgf import base_rows
from transfer.stats import permutation_test, spearman, stratified_permutation_test
from transfer.tasks import BASELINE

log = logging.getLogger("transfer")

ALPHA = 0.05
CELL = ["source_task", "target_task"]
RELATION_KEYS = {"positive": "planted_positive", "negative": "planted_negative", "none": "unplanted"}


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the exact one-sided p-value of k successes (log-space terms)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
                 + (n - i) * math.log1p(-p) for i in range(k, n + 1)]
    return min(1.0, math.fsum(math.exp(t) for t in log_terms))


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def base_accuracy(accuracy: pl.DataFrame, model: str) -> dict[str, dict[str, float]]:
    """{target: {accuracy, chance, p}} of the base model's rows (transfer.pgf.base_rows);
    p = P(Binomial(n, chance) >= correct)."""
    base = (base_rows(accuracy.filter(pl.col("model") == model))
            .select("target_task", "n", "correct", "chance").sort("target_task"))
    out = {}
    for target, n, k, chance in base.iter_rows():
        out[target] = {"accuracy": k / n, "chance": chance, "p": binomial_sf(k, n, chance)}
    return out


def seed_split_spearman(pgf: pl.DataFrame) -> float | None:
    """Spearman of off-diagonal seed-mean PGF, first half vs second half of the sorted seeds (None if undefined)."""
    seeds = sorted(pgf["seed"].unique())
    if len(seeds) < 2:
        return None
    off = pgf.filter(pl.col("source_task") != pl.col("target_task"))
    halves = [off.filter(pl.col("seed").is_in(part)).group_by(CELL).agg(pl.col("pgf").mean())
              for part in (seeds[: len(seeds) // 2], seeds[len(seeds) // 2:])]
    both = halves[0].join(halves[1], on=CELL, suffix="_b")
    return _number(spearman(both["pgf"], both["pgf_b"])) if both.height >= 2 else None


def planted_stats(cells: pl.DataFrame, column: str, tag: str, n_perm: int, rng: np.random.Generator) -> dict:
    """Mean `column` per relation, and one-sided permutation p-values of planted positive > unplanted and
    planted negative < unplanted (None when a group is empty). `cells` has `relation` and `target_task`.

    `*_p` permutes the relation labels within each target task's column (`*_excess`: the planted cells' mean
    excess over the unplanted cells of the same target). Targets differ in level (a target the base answers
    well loses from almost any finetune, one below chance gains), so cells of different columns are not
    exchangeable; `*_p_pooled` is the unstratified test that ignores this, for comparison.
    """
    values = {rel: cells.filter(pl.col("relation") == rel)[column].to_numpy() for rel in RELATION_KEYS}
    out: dict[str, float | int | None] = {}
    for rel, key in RELATION_KEYS.items():
        out[f"{key}{tag}_mean"] = float(values[rel].mean()) if len(values[rel]) else None
    for rel, alternative in (("positive", "greater"), ("negative", "less")):
        key = f"{RELATION_KEYS[rel]}{tag}"
        pair = cells.filter(pl.col("relation").is_in([rel, "none"]))
        shared = set(pair.filter(pl.col("relation") == rel)["target_task"]) & set(
            pair.filter(pl.col("relation") == "none")["target_task"])
        if not shared:
            out.update({f"{key}_p": None, f"{key}_excess": None, f"{key}_p_pooled": None})
            continue
        excess, p = stratified_permutation_test(pair[column].to_numpy(), (pair["relation"] == rel).to_numpy(),
                                                pair["target_task"].to_numpy(), alternative, n_perm, rng)
        out.update({f"{key}_p": p, f"{key}_excess": excess,
                    f"{key}_p_pooled": permutation_test(values[rel], values["none"], alternative, n_perm, rng)[1]})
    return out


def model_summary(intervals: pl.DataFrame, pgf: pl.DataFrame, accuracy: pl.DataFrame, planted: pl.DataFrame | None,
                  model: str, n_perm: int, seed: int) -> dict:
    """The validation numbers of one model (see validation_summary)."""
    cells = intervals.filter(pl.col("model") == model)
    diag = cells.filter(pl.col("source_task") == pl.col("target_task"))
    off = cells.filter(pl.col("source_task") != pl.col("target_task"))
    base = base_accuracy(accuracy, model)
    above = [t for t, row in base.items() if row["p"] < ALPHA]
    model_pgf = pgf.filter(pl.col("model") == model)
    out = {"n_seeds": model_pgf["seed"].n_unique(), "off_diagonal_cells": off.height,
           "base_above_chance": len(above), "base_tasks": len(base), "base_above_chance_tasks": above,
           "base_accuracy": base,
           "diag_significant": int((diag["ci_low"] > 0).sum()),
           "diag_significant_tasks": sorted(diag.filter(pl.col("ci_low") > 0)["target_task"]),
           "significant_positive_cells": int((off["ci_low"] > 0).sum()),
           "significant_negative_cells": int((off["ci_high"] < 0).sum()),
           "seed_spearman": seed_split_spearman(model_pgf), "notes": []}
    if planted is None:
        out["notes"].append("no planted structure (not the synthetic suite): planted_* keys left out")
        return out
    related = off.join(planted.select(*CELL, "relation"), on=CELL, how="inner")
    rng = np.random.default_rng(seed)
    out.update({f"{key}_cells": int((related["relation"] == rel).sum()) for rel, key in RELATION_KEYS.items()})
    out.update(planted_stats(related, "pgf_mean", "", n_perm, rng))
    out.update(planted_stats(related, "dacc_mean", "_dacc", n_perm, rng))
    return out


def validation_summary(intervals: pl.DataFrame, pgf: pl.DataFrame, accuracy: pl.DataFrame,
                       planted: pl.DataFrame | None, n_perm: int = 10_000, seed: int = 0) -> dict[str, dict]:
    """{model: numbers} for every model with base rows in `accuracy` or cells in `intervals`.

    intervals: transfer.stats.cell_intervals output; pgf: per-seed long PGF (model, source_task, target_task,
    seed, pgf); accuracy: score rows (model, source_task, target_task, seed, n, correct, chance), base rows
    with source_task "none"; planted: planted_table() for the synthetic suite, else None (planted keys left
    out). Cells missing from `intervals` are not counted. Permutation tests use n_perm draws seeded by `seed`.
    """
    base_models = accuracy.filter(pl.col("source_task") == BASELINE)["model"]
    models = sorted(set(intervals["model"]) | set(base_models))
    return {m: model_summary(intervals, pgf, accuracy, planted, m, n_perm, seed) for m in models}


def is_synthetic(scores: pl.DataFrame) -> bool:
    """Whether every score row comes from the synthetic suite (a missing `data_source` column: no)."""
    return "data_source" in scores.columns and bool(scores["data_source"].eq_missing("synthetic").all())


def headline(model: str, summary: dict) -> str:
    """One log line with the headline numbers of one model's summary."""
    parts = [f"base above chance {summary['base_above_chance']}/{summary['base_tasks']}",
             f"diagonal significant {summary['diag_significant']}",
             f"significant off-diagonal +{summary['significant_positive_cells']}"
             f"/-{summary['significant_negative_cells']} of {summary['off_diagonal_cells']}"]
    if "planted_positive_p" in summary:
        parts += [f"planted + {_fmt(summary['planted_positive_mean'])} (p={_fmt(summary['planted_positive_p'])})",
                  f"planted - {_fmt(summary['planted_negative_mean'])} (p={_fmt(summary['planted_negative_p'])})",
                  f"unplanted {_fmt(summary['unplanted_mean'])}"]
    parts.append(f"seed spearman {_fmt(summary['seed_spearman'])}")
    return f"validation {model}: " + ", ".join(parts)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def write_validation(intervals: pl.DataFrame, pgf: pl.DataFrame, scores: pl.DataFrame, out: Path) -> dict:
    """summary.json (and planted.parquet for the synthetic suite) into `out`; logs one line per model."""
    from transfer.atomic import write_json, write_parquet
    from transfer.embedded.planted import planted_table

    planted = planted_table() if is_synthetic(scores) else None
    if planted is not None:
        write_parquet(planted, out / "planted.parquet")
    summary = validation_summary(intervals, pgf, scores, planted)
    write_json(summary, out / "summary.json")
    for model, values in summary.items():
        log.info("%s", headline(model, values))
    return summary
