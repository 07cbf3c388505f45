"""Paired statistics for PGF cells: bootstrap intervals, rank tests, permutation tests (numpy + polars only)."""
from __future__ import annotations

import math
from itertools import groupby

import numpy as np
import polars as pl

from transfer.pgf import base_rows, pgf_from_counts
from transfer.tasks import BASELINE

ALTERNATIVES = ("greater", "less", "two-sided")
EXACT_WILCOXON_MAX_N = 100   # above this the normal approximation (tie- and continuity-corrected) is used


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of: {', '.join(ALTERNATIVES)}")


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties sharing their mid-rank (as in the Wilcoxon and Spearman statistics)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mid = (starts + ends + 1) / 2.0                       # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mid, ends - starts)
    return ranks


def wilcoxon_signed_rank(x: np.ndarray, alternative: str = "greater") -> tuple[float, float, int]:
    """One-sample Wilcoxon signed-rank test of H0 "symmetric about 0"; returns (W+, p-value, n used).

    Zeros are dropped (Wilcoxon's convention) and ties get mid-ranks. For n <= 100 the p-value is exact:
    the null distribution of W+ (each rank's sign a fair coin) is built by dynamic programming on doubled
    ranks, which stay integers with mid-ranks. Above that, the normal approximation with tie and
    continuity corrections. With nothing left after dropping zeros, p = 1.
    """
    _check_alternative(alternative)
    x = np.asarray(x, dtype=float).ravel()
    if np.isnan(x).any():
        raise ValueError("wilcoxon_signed_rank got NaN values; drop missing cells first")
    x = x[x != 0]
    n = len(x)
    if n == 0:
        return 0.0, 1.0, 0
    ranks = rankdata(np.abs(x))
    w_plus = float(ranks[x > 0].sum())
    if n <= EXACT_WILCOXON_MAX_N:
        doubled = np.rint(2 * ranks).astype(int)
        dist = np.zeros(doubled.sum() + 1)
        dist[0] = 1.0
        for r in doubled:                                  # P(sum) after adding one more fair-coin rank
            dist[r:] = 0.5 * dist[r:] + 0.5 * dist[:-r]
            dist[:r] *= 0.5
        w2 = int(round(2 * w_plus))
        p_greater = float(dist[w2:].sum())
        p_less = float(dist[: w2 + 1].sum())
    else:
        mean = n * (n + 1) / 4
        _, tie_counts = np.unique(ranks, return_counts=True)
        var = n * (n + 1) * (2 * n + 1) / 24 - (tie_counts**3 - tie_counts).sum() / 48
        sd = math.sqrt(var)
        p_greater = _normal_sf((w_plus - mean - 0.5) / sd)
        p_less = _normal_sf((mean - w_plus - 0.5) / sd)
    p = {"greater": p_greater, "less": p_less, "two-sided": 2 * min(p_greater, p_less)}[alternative]
    return w_plus, min(1.0, p), n


def sign_test(x: np.ndarray, alternative: str = "greater") -> tuple[int, float, int]:
    """Exact sign test of H0 "median 0"; returns (number of positives, p-value, n non-zero)."""
    _check_alternative(alternative)
    x = np.asarray(x, dtype=float).ravel()
    x = x[x != 0]
    n, k = len(x), int((x > 0).sum())
    pmf = np.array([math.comb(n, i) for i in range(n + 1)], dtype=float) / 2.0**n
    p_greater, p_less = float(pmf[k:].sum()), float(pmf[: k + 1].sum())
    p = {"greater": p_greater, "less": p_less, "two-sided": 2 * min(p_greater, p_less)}[alternative]
    return k, min(1.0, p), n


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on mid-ranks); NaN when either side is constant."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"spearman needs two arrays of equal length >= 2, got {len(a)} and {len(b)}")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    denom = math.sqrt(float((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def permutation_test(group: np.ndarray, rest: np.ndarray, alternative: str = "greater",
                     n_perm: int = 10_000, rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Difference in means (group − rest) and its permutation p-value, (1 + #as extreme) / (1 + n_perm)."""
    _check_alternative(alternative)
    group, rest = np.asarray(group, dtype=float).ravel(), np.asarray(rest, dtype=float).ravel()
    if len(group) == 0 or len(rest) == 0:
        raise ValueError(f"permutation_test needs two non-empty samples, got {len(group)} and {len(rest)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    pooled = np.concatenate([group, rest])
    observed = group.mean() - rest.mean()
    perms = rng.permuted(np.broadcast_to(pooled, (n_perm, len(pooled))), axis=1)
    g = perms[:, : len(group)].mean(axis=1)
    stats = g - (pooled.sum() - g * len(group)) / len(rest)
    tol = 1e-12 * max(1.0, abs(observed))
    extreme = {"greater": stats >= observed - tol, "less": stats <= observed + tol,
               "two-sided": np.abs(stats) >= abs(observed) - tol}[alternative]
    return float(observed), float((1 + extreme.sum()) / (1 + n_perm))


def stratified_permutation_test(values: np.ndarray, in_group: np.ndarray, strata: np.ndarray,
                                alternative: str = "greater", n_perm: int = 10_000,
                                rng: np.random.Generator | None = None) -> tuple[float, float]:
    """The group's mean excess over the rest of its own stratum, mean over group members i of
    (v_i - mean of the non-members in i's stratum), and its p-value from permuting membership within each
    stratum (a block permutation: each stratum keeps its level and its number of members). Strata without
    members or without non-members are left out. Returns (excess, p) with p = (1 + #as extreme) / (1 + n_perm).
    """
    _check_alternative(alternative)
    values, in_group = np.asarray(values, dtype=float).ravel(), np.asarray(in_group, dtype=bool).ravel()
    strata = np.asarray(strata).ravel()
    if not len(values) == len(in_group) == len(strata):
        raise ValueError(f"values, in_group and strata differ in length: {len(values)}, {len(in_group)}, "
                         f"{len(strata)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    observed, perms, members = 0.0, np.zeros(n_perm), 0
    for stratum in np.unique(strata):
        v, g = values[strata == stratum], in_group[strata == stratum]
        n_in, n_out = int(g.sum()), int((~g).sum())
        if n_in == 0 or n_out == 0:
            continue
        # sum over members of (v - mean of non-members) = S (1 + n_in / n_out) - n_in * total / n_out, S = members' sum
        weight, offset = 1 + n_in / n_out, n_in * v.sum() / n_out
        observed += v[g].sum() * weight - offset
        perms += rng.permuted(np.broadcast_to(v, (n_perm, len(v))), axis=1)[:, :n_in].sum(axis=1) * weight - offset
        members += n_in
    if members == 0:
        raise ValueError("stratified_permutation_test needs a stratum with both members and non-members")
    observed, perms = observed / members, perms / members
    tol = 1e-12 * max(1.0, abs(observed))
    extreme = {"greater": perms >= observed - tol, "less": perms <= observed + tol,
               "two-sided": np.abs(perms) >= abs(observed) - tol}[alternative]
    return float(observed), float((1 + extreme.sum()) / (1 + n_perm))


# ---------------------------------------------------------------------------------------------------------
# PGF from counts and its paired bootstrap


def _bootstrap_block(base: np.ndarray, ft: np.ndarray, n_boot: int, rng: np.random.Generator,
                     level: float = 0.95, resample_seeds: bool = True) -> dict[str, np.ndarray]:
    """Paired bootstrap of many cells sharing one target's questions.

    base: (n,) per-question correctness of the base (means over base seeds allowed).
    ft:   (cells, seeds, n) 0/1 correctness of the finetuned runs.
    Questions are resampled once per replicate for all cells (paired with the base), then seeds with
    replacement (unless resample_seeds is False). Returns point estimates (seed means on the full data),
    seed std and percentile intervals for PGF and Δaccuracy, each of shape (cells,).
    """
    cells, seeds, n = ft.shape
    k_base, k_ft = base.sum(), ft.sum(axis=2)                            # (), (cells, seeds)
    pgf_seed = pgf_from_counts(k_ft, k_base, n)
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    weights = np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)   # (B, n)
    kb = weights @ base                                                  # (B,)
    kf = (weights @ ft.reshape(cells * seeds, n).T).reshape(n_boot, cells, seeds)
    boot_pgf = pgf_from_counts(kf, kb[:, None, None], n)
    boot_dacc = (kf - kb[:, None, None]) / n
    seed_weights = np.ones((n_boot, seeds))
    if seeds > 1 and resample_seeds:                                     # resample seeds as well
        picks = rng.integers(0, seeds, size=(n_boot, seeds)) + seeds * np.arange(n_boot)[:, None]
        seed_weights = np.bincount(picks.ravel(), minlength=n_boot * seeds).reshape(n_boot, seeds).astype(float)
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    pgf_lo, pgf_hi = np.percentile(np.einsum("bcs,bs->bc", boot_pgf, seed_weights) / seeds, tails, axis=0)
    dacc_lo, dacc_hi = np.percentile(np.einsum("bcs,bs->bc", boot_dacc, seed_weights) / seeds, tails, axis=0)
    return {"pgf_mean": pgf_seed.mean(axis=1),
            "pgf_std": pgf_seed.std(axis=1, ddof=1) if seeds > 1 else np.full(cells, np.nan),
            "ci_low": pgf_lo, "ci_high": pgf_hi,
            "dacc_mean": ((k_ft - k_base) / n).mean(axis=1), "dacc_low": dacc_lo, "dacc_high": dacc_hi}


def paired_bootstrap_pgf(base_correct: np.ndarray, ft_correct: np.ndarray, n_boot: int = 2000,
                         rng: np.random.Generator | None = None, level: float = 0.95,
                         resample_seeds: bool = True) -> tuple[float, float, float]:
    """(seed-mean PGF, interval low, interval high) for one cell from per-question 0/1 arrays.

    base_correct: (n,) or (base_seeds, n) — several base runs are averaged per question.
    ft_correct: (n,) for one run or (seeds, n); with several seeds, seeds and questions are resampled.
    Resampling both levels is conservative when runs differ only by question-level noise (the
    question resample already carries that noise); resample_seeds=False resamples questions only,
    which is exact in that case but blind to whole-run effects (a diverged run).
    """
    base = np.asarray(base_correct, dtype=float)
    base = base.mean(axis=0) if base.ndim == 2 else base
    ft = np.asarray(ft_correct, dtype=float)
    ft = ft[None, :] if ft.ndim == 1 else ft
    if base.ndim != 1 or ft.ndim != 2 or ft.shape[1] != base.shape[0]:
        raise ValueError(f"base_correct (n,) and ft_correct (seeds, n) must share n questions; "
                         f"got shapes {np.shape(base_correct)} and {np.shape(ft_correct)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    out = _bootstrap_block(base, ft[None], n_boot, rng, level, resample_seeds)
    return float(out["pgf_mean"][0]), float(out["ci_low"][0]), float(out["ci_high"][0])


PREDICTION_COLUMNS = ("model", "source_task", "seed", "target_task", "idx", "correct")


def cell_intervals(predictions: pl.DataFrame, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95, resample_seeds: bool = True) -> pl.DataFrame:
    """Bootstrap intervals for every (model, source, target) cell from per-question predictions.

    predictions: model, source_task, seed, target_task, idx, correct; the base rows have
    source_task == "none" (the lowest seed's are the base model's, see transfer.pgf.base_rows). Every finetuned
    run must cover exactly the base's questions of that target. See paired_bootstrap_pgf for resample_seeds.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions frame lacks columns {missing}; expected {list(PREDICTION_COLUMNS)}")
    predictions = pl.concat([predictions.filter(pl.col("source_task") != BASELINE), base_rows(predictions)])
    rng = np.random.default_rng(seed)
    # One hash group-by into runs (questions sorted by idx), then numpy slices: no sort of the long frame
    # and no polars call per cell.
    runs = (predictions.select(PREDICTION_COLUMNS)
            .with_columns(pl.col("seed").cast(pl.String), pl.col("correct").cast(pl.Float64))
            .group_by("model", "target_task", "source_task", "seed")
            .agg(pl.col("correct").sort_by("idx"), pl.col("idx").sort())
            .sort("model", "target_task", "source_task", "seed"))
    lens = runs["idx"].list.len().to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    idx, correct = runs["idx"].explode().to_numpy(), runs["correct"].explode().to_numpy()
    keys = runs.select("model", "target_task", "source_task").rows()
    columns: dict[str, list] = {"model": [], "source_task": [], "target_task": [], "n_seeds": []}
    stats: dict[str, list[np.ndarray]] = {}
    for (model, target), members in groupby(range(len(keys)), key=lambda r: keys[r][:2]):
        members = np.fromiter(members, dtype=int)
        sources = [keys[r][2] for r in members]
        is_base = np.array([s == BASELINE for s in sources])
        if not is_base.any():
            raise ValueError(f"no base predictions (source_task={BASELINE!r}) for model {model!r}, target {target!r}")
        n = int(lens[members[is_base][0]])
        span = starts[members][:, None] + np.arange(n)
        if (lens[members] != n).any() or (idx[span] != idx[span[is_base][0]]).any():   # lens first: span stays in range
            raise ValueError(f"finetuned predictions for model {model!r}, target {target!r} do not cover the "
                             f"base's {n} questions exactly")
        base = correct[span[is_base]].mean(axis=0)
        by_seeds: dict[int, list[str]] = {}
        runs_of = {s: np.flatnonzero([x == s for x in sources]) for s in dict.fromkeys(sources) if s != BASELINE}
        for source, rows in runs_of.items():
            by_seeds.setdefault(len(rows), []).append(source)
        for n_seeds, block in by_seeds.items():
            ft = correct[span[np.concatenate([runs_of[s] for s in block])]].reshape(len(block), n_seeds, n)
            for name, values in _bootstrap_block(base, ft, n_boot, rng, level, resample_seeds).items():
                stats.setdefault(name, []).append(values)
            columns["model"] += [model] * len(block)
            columns["source_task"] += block
            columns["target_task"] += [target] * len(block)
            columns["n_seeds"] += [n_seeds] * len(block)
    schema = {"model": pl.String, "source_task": pl.String, "target_task": pl.String, "pgf_mean": pl.Float64,
              "pgf_std": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "n_seeds": pl.Int64,
              "dacc_mean": pl.Float64, "dacc_low": pl.Float64, "dacc_high": pl.Float64}
    if not columns["model"]:
        return pl.DataFrame(schema=schema)
    out = pl.DataFrame({**columns, **{name: np.concatenate(parts) for name, parts in stats.items()}})
    out = out.with_columns(pl.col("pgf_std").fill_nan(None)).select(list(schema)).cast(schema)
    return out.sort("model", "source_task", "target_task")
