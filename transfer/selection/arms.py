"""The arms of the PGF-guided data-selection experiment (the paper's section on data selection): which sources
each trains on, in what shares.

For a target T the pool is the 12 other tasks; T's own data enters only the `direct` arm (the ceiling when T has
data). The PGF arms rank the pool by the seed-mean PGF toward T, raw or double-centred; `random` draws are the
control of the same size, `bottom` the negative control and `oracle` (synthetic suite) the planted donors.
When no top-k source has a positive PGF toward T, `pgf_weighted` has nothing to weight by: it falls back to equal
shares (the same mixture as `pgf_top`) and says so in its `note`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from transfer.analysis.tables import seed_mean_matrix, validate_pgf
from transfer.tasks import TASK_NAMES

BASE, DIRECT, UNIFORM, RANDOM = "base", "direct", "uniform", "random"
PGF_TOP, PGF_WEIGHTED, PGF_CENTRED = "pgf_top", "pgf_weighted", "pgf_centred"
BOTTOM, ORACLE = "bottom", "oracle"
PGF_ARMS = (PGF_TOP, PGF_WEIGHTED, PGF_CENTRED)
ARM_NAMES = (BASE, DIRECT, UNIFORM, RANDOM, *PGF_ARMS, BOTTOM, ORACLE)   # the order arms_for_target returns
MIN_RANDOM_DRAWS = 5
PLANTED_COLUMNS = ("source_task", "target_task", "relation")
RELATIONS = ("positive", "negative", "none")


@dataclass(frozen=True)
class Arm:
    """One training mix: the source tasks and their shares of the training data; `draw` numbers the random arms;
    `note` says where an arm is not what its name promises (a fallback)."""
    name: str
    sources: tuple[str, ...]
    weights: tuple[float, ...]
    draw: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.weights):
            raise ValueError(f"arm {self.name!r} has {len(self.sources)} sources but {len(self.weights)} weights")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"arm {self.name!r} repeats a source: {self.sources}")
        if self.sources and (min(self.weights) < 0 or not math.isclose(sum(self.weights), 1.0)):
            raise ValueError(f"arm {self.name!r} weights {self.weights} are not non-negative shares summing to 1")


def equal_arm(name: str, sources: Sequence[str], draw: int | None = None) -> Arm:
    """An arm giving each source the same share."""
    return Arm(name, tuple(sources), (1.0 / len(sources),) * len(sources), draw)


def double_centred(matrix: np.ndarray) -> np.ndarray:
    """m_ij − r_i − c_j + g over the off-diagonal cells (row, column and grand means of those cells).

    The raw PGF toward T mostly says how movable T is; within T's column the centred value ranks sources by how
    much more they help T than they help every target. The diagonal and NaN cells (no run) are left out of every
    mean; the result is NaN there. With the diagonal left out the removal is not exact: an additive
    m_ij = a_i + b_j leaves (b_i + a_j) / (n − 1) plus a constant.
    """
    m = np.array(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"double_centred needs a square matrix, got shape {m.shape}")
    np.fill_diagonal(m, np.nan)
    known = ~np.isnan(m)
    filled = np.where(known, m, 0.0)
    row = _mean(filled.sum(axis=1), known.sum(axis=1))
    col = _mean(filled.sum(axis=0), known.sum(axis=0))
    grand = _mean(filled.sum(), known.sum())
    return m - row[:, None] - col[None, :] + grand


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    total, count = np.asarray(total, dtype=float), np.asarray(count)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def top_k(scores: Mapping[str, float], k: int) -> tuple[str, ...]:
    """The k names with the highest scores, best first; ties by name; NaN scores are never picked."""
    return _ranked(scores, k, descending=True)


def bottom_k(scores: Mapping[str, float], k: int) -> tuple[str, ...]:
    """The k names with the lowest scores, lowest first; ties by name; NaN scores are never picked."""
    return _ranked(scores, k, descending=False)


def _ranked(scores: Mapping[str, float], k: int, descending: bool) -> tuple[str, ...]:
    known = {name: float(v) for name, v in scores.items() if not math.isnan(v)}
    if not 1 <= k <= len(known):
        raise ValueError(f"k={k} is outside 1..{len(known)} (the names with a score)")
    sign = -1.0 if descending else 1.0
    return tuple(sorted(known, key=lambda name: (sign * known[name], name))[:k])


def pgf_shares(values: Sequence[float]) -> tuple[float, ...]:
    """Shares proportional to the positive part of each PGF; equal shares when none is positive."""
    positive = np.clip(np.asarray(values, dtype=float), 0.0, None)
    if positive.sum() <= 0:
        return (1.0 / len(positive),) * len(positive)
    return tuple(float(v) for v in positive / positive.sum())


def weighted_arm(sources: Sequence[str], values: Sequence[float]) -> Arm:
    """pgf_weighted: shares proportional to the positive part of each source's PGF; with none positive, equal
    shares (the same mixture as pgf_top), noted on the arm."""
    note = None if max(values) > 0 else (f"no top-{len(values)} source has a positive PGF toward the target: equal "
                                         f"shares, the same mixture as {PGF_TOP}")
    return Arm(PGF_WEIGHTED, tuple(sources), pgf_shares(values), note=note)


def random_draws(pool: Sequence[str], k: int, n_draws: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """n_draws k-subsets of pool (each in pool order), distinct until every subset has been drawn once."""
    n_subsets = math.comb(len(pool), k)
    draws: list[tuple[str, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(draws) < n_draws:
        if len(seen) == n_subsets:                     # every subset drawn: start a new round
            seen.clear()
        picks = tuple(sorted(int(i) for i in rng.choice(len(pool), size=k, replace=False)))
        if picks not in seen:
            seen.add(picks)
            draws.append(tuple(pool[i] for i in picks))
    return draws


def planted_donors(planted: pl.DataFrame, target: str) -> tuple[str, ...]:
    """The sources with a planted positive relation toward target, in matrix order (TASK_NAMES)."""
    missing = [c for c in PLANTED_COLUMNS if c not in planted.columns]
    if missing:
        raise ValueError(f"planted frame lacks columns {missing}; expected {list(PLANTED_COLUMNS)}")
    unknown = sorted(set(planted["relation"].unique().to_list()) - set(RELATIONS))
    if unknown:
        raise ValueError(f"planted frame has unknown relation {unknown}; expected one of {list(RELATIONS)}")
    rows = planted.filter((pl.col("target_task") == target) & (pl.col("relation") == "positive")
                          & (pl.col("source_task") != target))
    sources = set(rows["source_task"].to_list())
    if sources - set(TASK_NAMES):
        raise ValueError(f"planted frame has unknown source_task {sorted(sources - set(TASK_NAMES))}")
    return tuple(t for t in TASK_NAMES if t in sources)


def pgf_toward(pgf: pl.DataFrame, model: str, target: str) -> tuple[dict[str, float], dict[str, float]]:
    """({source: seed-mean PGF toward target}, {source: double-centred PGF toward target}) for one model.

    The centring reads the whole matrix in `pgf` (every target's column: a frame holding only the chosen targets'
    columns would centre each source on those alone, and with one target every centred value would be 0), so it
    needs at least two target columns. Sources without a run toward target are left out.
    """
    validate_pgf(pgf, "pgf frame")
    tasks, mean = seed_mean_matrix(pgf, model)          # raises on an unknown model
    j = tasks.index(target) if target in tasks else None
    keep = [] if j is None else [i for i in range(len(tasks)) if i != j and not np.isnan(mean[i, j])]
    if not keep:
        raise ValueError(f"model {model!r} has no PGF rows toward target {target!r}")
    off = mean.copy()
    np.fill_diagonal(off, np.nan)
    columns = int((~np.isnan(off)).any(axis=0).sum())
    if columns < 2:
        raise ValueError(f"model {model!r} has PGF toward {columns} target(s); the double-centred PGF needs the "
                         "matrix's other target columns too (at least two)")
    centred = double_centred(mean)
    return ({tasks[i]: float(mean[i, j]) for i in keep}, {tasks[i]: float(centred[i, j]) for i in keep})


def arms_for_target(pgf: pl.DataFrame, model: str, target: str, k: int, n_random: int, seed: int,
                    planted: pl.DataFrame | None = None) -> list[Arm]:
    """Every arm for one model and target, in ARM_NAMES order (the paper's section on data selection).

    pgf: a sweep's long PGF frame (model, source_task, target_task, seed, pgf). The random draws come from a
    generator seeded with (seed, target's index), so each target has its own reproducible draws. `oracle` is
    added only when `planted` (source_task, target_task, relation) gives target a positive donor.
    """
    if target not in TASK_NAMES:
        raise ValueError(f"unknown target {target!r}; expected one of {TASK_NAMES}")
    pool = tuple(t for t in TASK_NAMES if t != target)
    if not 1 <= k <= len(pool):
        raise ValueError(f"k={k} is outside 1..{len(pool)} (the tasks other than the target)")
    if n_random < MIN_RANDOM_DRAWS:
        raise ValueError(f"n_random={n_random} is below {MIN_RANDOM_DRAWS}")
    raw, centred = pgf_toward(pgf, model, target)
    if len(raw) < k:
        raise ValueError(f"k={k} exceeds the {len(raw)} sources with PGF toward {target!r} for model {model!r}")
    rng = np.random.default_rng([seed, TASK_NAMES.index(target)])
    top = top_k(raw, k)
    arms = [Arm(BASE, (), ()), equal_arm(DIRECT, (target,)), equal_arm(UNIFORM, pool)]
    arms += [equal_arm(RANDOM, draw, d) for d, draw in enumerate(random_draws(pool, k, n_random, rng))]
    arms += [equal_arm(PGF_TOP, top), weighted_arm(top, [raw[s] for s in top]),
             equal_arm(PGF_CENTRED, top_k(centred, k)), equal_arm(BOTTOM, bottom_k(raw, k))]
    donors = planted_donors(planted, target) if planted is not None else ()
    if donors:
        arms.append(equal_arm(ORACLE, donors))
    return arms
