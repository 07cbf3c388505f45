"""Personas, as the paper names them: Donor (high Δ⁺), Pirate (most negative Δ⁻), Sponge (high Θ⁺), Sieve (most
negative Θ⁻).

Rule. A task takes a persona when both hold:
1. it is among the top quarter of tasks by that score on the seed-mean matrix (rank ≤ ⌈n/4⌉ of the n
   tasks that have the score, ties sharing the better rank), with the score's sign (Δ⁺ > 0, Δ⁻ < 0, …);
2. a one-sided permutation test with max-T adjustment gives p < alpha (0.05). Null: within each
   (seed, target) the PGFs of the sources are exchangeable (for Θ: within each (seed, source), the
   targets). Each permutation shuffles every column per seed, recomputes every task's score on the
   seed-mean matrix and keeps the most extreme one; p = share of permutations whose most extreme score
   reaches the task's own. Comparing with the best of the permuted tasks (not with one random task)
   accounts for having picked the task as a top scorer, so structureless data yields a persona with
   probability ≤ alpha. The unadjusted p (same permutations, the task's own null) is reported alongside.

Why not a test across seeds alone: with 4 seeds no one-sided sign or Wilcoxon test can go below
p = 1/16 = 0.0625. A Wilcoxon test of the entries against the median source per (seed, target) was
tried too; it tests the mean shift of all entries rather than the score, and it misses the paper's
clearest donor (Semantic Correspondence, whose Δ⁺ comes from a few large gains).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl

from transfer.analysis.tables import seed_cube
from transfer.analysis.transferability import signed_transfer

PERSONAS = {                     # persona: (score column, axis the task sits on, sign)
    "donor": ("delta_pos", "source", 1),
    "pirate": ("delta_neg", "source", -1),
    "sponge": ("theta_pos", "target", 1),
    "sieve": ("theta_neg", "target", -1),
}


def _permutation_scores(cube: np.ndarray, sign: int, include_diagonal: bool, n_perm: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(observed score per row, permuted scores (n_perm, rows)) for cube[seed, source, target]; each
    permutation shuffles every (seed, column) among that column's sources (the diagonal stays out)."""
    seeds, size, _ = cube.shape
    present = ~np.isnan(cube).all(axis=0)
    is_source, is_target = present.any(axis=1), present.any(axis=0)
    counted = np.ones((size, size), dtype=bool) if include_diagonal else ~np.eye(size, dtype=bool)
    null = np.full((n_perm, seeds, size, size), np.nan)
    for j in np.flatnonzero(is_target):
        donors = np.flatnonzero(is_source & counted[:, j])
        null[:, :, donors, j] = rng.permuted(np.broadcast_to(cube[:, donors, j], (n_perm, seeds, len(donors))), axis=-1)
    missing = np.isnan(cube)
    if (missing.any(axis=0) == missing.all(axis=0)).all():          # no seed lacks a cell: plain means
        null_mean, observed_mean = null.mean(axis=1), cube.mean(axis=0)
    else:
        with warnings.catch_warnings():                              # all-missing cells stay NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            null_mean, observed_mean = np.nanmean(null, axis=1), np.nanmean(cube, axis=0)
    n_total = is_target.sum() - (0 if include_diagonal else is_target.astype(int))
    observed = signed_transfer(np.where(counted, observed_mean, np.nan), n_total, sign)
    permuted = signed_transfer(np.where(counted, null_mean, np.nan), n_total, sign)
    return np.where(is_source, observed, np.nan), np.where(is_source, permuted, np.nan)


def persona_tests(pgf: pl.DataFrame, model: str, include_diagonal: bool = False, n_perm: int = 1000,
                  alpha: float = 0.05, seed: int = 0) -> pl.DataFrame:
    """Every (persona, task) candidate with score, rank, top-quarter flag, permutation p and the verdict.

    Columns: model, persona, task, statistic (delta_pos, …), score, rank, n_ranked, top_quarter,
    p_value (max-T adjusted), p_unadjusted, assigned.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"persona alpha must be in (0, 1), got {alpha}")
    if n_perm < 1:
        raise ValueError(f"persona n_perm must be >= 1, got {n_perm}")
    rng = np.random.default_rng(seed)
    tasks, _, cube = seed_cube(pgf, model)
    frames = []
    for persona, (score_name, axis, sign) in PERSONAS.items():
        oriented = cube if axis == "source" else cube.transpose(0, 2, 1)
        observed, permuted = _permutation_scores(oriented, sign, include_diagonal, n_perm, rng)
        has = ~np.isnan(observed)
        signed = np.where(has, sign * observed, -np.inf)
        rank = 1 + (signed[None, :] > signed[:, None]).sum(axis=1)     # ties share the better rank
        n_ranked = int(has.sum())
        top = has & (rank <= math.ceil(n_ranked / 4)) & (signed > 0)
        extreme = np.nanmax(np.where(np.isnan(permuted), -np.inf, sign * permuted), axis=1)   # (n_perm,)
        tol = 1e-12
        p_adjusted = (1 + (extreme[:, None] >= signed[None, :] - tol).sum(axis=0)) / (1 + n_perm)
        p_unadjusted = (1 + (sign * permuted >= signed[None, :] - tol).sum(axis=0)) / (1 + n_perm)
        frames.append(pl.DataFrame({
            "model": model, "persona": persona, "task": tasks, "statistic": score_name, "score": observed, "rank": rank,
            "n_ranked": n_ranked, "top_quarter": top, "p_value": p_adjusted, "p_unadjusted": p_unadjusted,
            "assigned": top & (p_adjusted < alpha),
        }).filter(pl.Series(has)))
    return pl.concat(frames).sort("persona", "rank")


def assigned_personas(tests: pl.DataFrame) -> dict[str, list[str]]:
    """{persona: [tasks]} from persona_tests, best-ranked first."""
    return {persona: tests.filter((pl.col("persona") == persona) & pl.col("assigned")).sort("rank")["task"].to_list()
            for persona in PERSONAS}
