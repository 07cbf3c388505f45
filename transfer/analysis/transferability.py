"""Transferability Δ± per source (rows) and malleability Θ± per target (columns), as the paper defines them.

    Δ⁺(i) = (1 − e^(−p/N)) / p · Σ_j μ(i→j)·1[μ(i→j) > 0]      (Δ⁻: the negative entries, n of them)

N is the number of target tasks in the matrix, less the task itself when the diagonal is excluded (the
default: transfer is about *other* tasks). Missing cells count in N but in neither p nor n; p = 0 gives 0.
Rows (columns) without any data are not sources (targets) and get NaN.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from transfer.analysis.tables import ZERO_TOLERANCE, ordered_models, seed_cube, seed_mean_matrix
from transfer.tasks import TASKS

SCORE_COLUMNS = ("delta_pos", "delta_neg", "theta_pos", "theta_neg")
SEED_MEAN = "mean"   # the seed label of scores computed on the seed-mean matrix


def signed_transfer(rows: np.ndarray, n_total: np.ndarray | int, sign: int) -> np.ndarray:
    """(1 − e^(−c/N)) / c · Σ of the entries of the given sign along the last axis (c of them; NaN ignored).

    sign = +1 gives Δ⁺/Θ⁺, sign = −1 gives Δ⁻/Θ⁻ (≤ 0); no entry of that sign gives 0; |entry| below
    ZERO_TOLERANCE counts as zero.
    """
    rows = np.asarray(rows, dtype=float)
    mask = ~np.isnan(rows) & (sign * np.nan_to_num(rows) > ZERO_TOLERANCE)
    count = mask.sum(axis=-1)
    total = np.where(mask, rows, 0.0).sum(axis=-1)
    n_total = np.maximum(np.asarray(n_total), 1)
    safe = np.maximum(count, 1)
    return np.where(count > 0, (1 - np.exp(-count / n_total)) * total / safe, 0.0)


def _signed_scores(matrix: np.ndarray, include_diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) transferability of every row of a square matrix."""
    present = ~np.isnan(matrix)
    is_source, is_target = present.any(axis=1), present.any(axis=0)
    rows = matrix if include_diagonal else np.where(np.eye(len(matrix), dtype=bool), np.nan, matrix)
    n_total = is_target.sum() - (0 if include_diagonal else is_target.astype(int))     # per row
    return tuple(np.where(is_source, signed_transfer(rows, n_total, sign), np.nan) for sign in (1, -1))


def transferability(matrix: np.ndarray, include_diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(Δ⁺, Δ⁻) per source row of a T×T PGF matrix (rows = source, cols = target)."""
    _check_square(matrix)
    return _signed_scores(matrix, include_diagonal)


def malleability(matrix: np.ndarray, include_diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(Θ⁺, Θ⁻) per target column: the same formula over the sources hitting each target."""
    _check_square(matrix)
    return _signed_scores(matrix.T, include_diagonal)


def _check_square(matrix: np.ndarray) -> None:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square T×T PGF matrix, got shape {matrix.shape}")


def _score_frame(model: str, seed: str, tasks: list[str], matrix: np.ndarray, include_diagonal: bool) -> pl.DataFrame:
    delta_pos, delta_neg = transferability(matrix, include_diagonal)
    theta_pos, theta_neg = malleability(matrix, include_diagonal)
    return pl.DataFrame({
        "model": model, "seed": seed, "task": tasks,
        "level": [TASKS[t].level for t in tasks], "granularity": [TASKS[t].granularity for t in tasks],
        "delta_pos": delta_pos, "delta_neg": delta_neg, "theta_pos": theta_pos, "theta_neg": theta_neg,
    }).with_columns(pl.col(*SCORE_COLUMNS).fill_nan(None))


def transfer_scores(pgf: pl.DataFrame, include_diagonal: bool = False) -> pl.DataFrame:
    """Δ± and Θ± per model, seed and task; rows with seed == "mean" use the seed-mean matrix.

    Columns: model, seed, task, level, granularity, delta_pos, delta_neg, theta_pos, theta_neg
    (null where the task is not a source / not a target).
    """
    frames = []
    for model in ordered_models(pgf):
        tasks, matrix = seed_mean_matrix(pgf, model)
        frames.append(_score_frame(model, SEED_MEAN, tasks, matrix, include_diagonal))
        tasks, seeds, cube = seed_cube(pgf, model)
        frames.extend(_score_frame(model, s, tasks, m, include_diagonal) for s, m in zip(seeds, cube))
    return pl.concat(frames)


def averages(scores: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Mean Δ± / Θ± over tasks per model (and per `by`: "level" or "granularity").

    `<score>` is the average on the seed-mean matrix; `<score>_std` the std over seeds of the per-seed
    averages (null with one seed).
    """
    keys = ["model"] + ([by] if by else [])
    per_seed = scores.group_by(*keys, "seed").agg(pl.col(*SCORE_COLUMNS).mean())
    on_mean = per_seed.filter(pl.col("seed") == SEED_MEAN).drop("seed")
    spread = (per_seed.filter(pl.col("seed") != SEED_MEAN).group_by(*keys)
              .agg(pl.col(*SCORE_COLUMNS).std(ddof=1).name.suffix("_std"), pl.len().alias("n_seeds")))
    order = {m: i for i, m in enumerate(scores["model"].unique(maintain_order=True).to_list())}
    return (on_mean.join(spread, on=keys, how="left")
            .with_columns(pl.col("model").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
            .sort("_order", *keys[1:]).drop("_order"))
