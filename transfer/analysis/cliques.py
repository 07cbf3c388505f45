"""Cliques: groups of tasks that all help (or all hurt) each other, with a Wilcoxon test over seeds.

Rule (the paper's section on cliques; the simplest rule consistent with its figures): an undirected edge {i, j}
when the seed-mean μ(i→j) and μ(j→i) both exceed +min_pgf (positive) or are both below −min_pgf
(negative); then the maximal cliques of that graph. Each clique is tested with a one-sided Wilcoxon
signed-rank test on the per-seed PGFs of all its ordered pairs (k(k−1)·seeds values; H1: > 0 for
positive, < 0 for negative cliques). Reruns of one cell are far from independent draws, so this p
overstates confidence; `p_value_pairs` repeats the test on the k(k−1) seed-mean pair values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import permutations

import networkx as nx
import numpy as np
import polars as pl

from transfer.analysis.tables import ZERO_TOLERANCE, seed_cube, seed_mean_matrix
from transfer.stats import wilcoxon_signed_rank

SIGNS = {"positive": 1, "negative": -1}


@dataclass(frozen=True)
class Clique:
    sign: str                 # "positive" | "negative"
    tasks: list[str]          # in matrix order
    mean_pgf: float           # mean seed-mean PGF over the ordered pairs
    weakest_pgf: float        # the ordered pair closest to zero (seed mean)
    seed_consistency: float   # share of per-seed pair values with the clique's sign
    wilcoxon_w: float         # W+ of the signed-rank test over the per-seed values
    p_value: float
    n_values: int             # non-zero per-seed values entering the test
    p_value_pairs: float      # the same test over the seed-mean PGF of each ordered pair (no seed pseudo-replication)
    maximum: bool             # True for the cliques of the largest size

    def as_dict(self) -> dict:
        return asdict(self)


def clique_graph(tasks: list[str], mean: np.ndarray, sign: str, min_pgf: float = 0.0) -> nx.Graph:
    """Undirected graph with an edge where both directions pass the sign's threshold (diagonal ignored)."""
    s = _sign(sign)
    if min_pgf < 0:
        raise ValueError(f"clique min_pgf must be >= 0, got {min_pgf}")
    signed = np.where(np.isnan(mean), -np.inf, s * mean)
    floor = max(min_pgf, ZERO_TOLERANCE)                             # float residue is not transfer
    both = (signed > floor) & (signed.T > floor)
    graph = nx.Graph()
    graph.add_nodes_from(tasks)
    graph.add_edges_from((tasks[i], tasks[j]) for i, j in zip(*np.nonzero(np.triu(both, k=1))))
    return graph


def find_cliques(tasks: list[str], mean: np.ndarray, sign: str, min_pgf: float = 0.0) -> list[list[str]]:
    """Maximal cliques (≥ 3 tasks, or the largest ones when none reaches 3), largest first."""
    order = {t: i for i, t in enumerate(tasks)}
    cliques = [sorted(c, key=order.__getitem__) for c in nx.find_cliques(clique_graph(tasks, mean, sign, min_pgf))]
    cliques = [c for c in cliques if len(c) >= 2]
    if not cliques:
        return []
    min_size = min(3, max(len(c) for c in cliques))
    return sorted((c for c in cliques if len(c) >= min_size), key=lambda c: (-len(c), [order[t] for t in c]))


def model_cliques(pgf: pl.DataFrame, model: str, min_pgf: float = 0.0) -> dict[str, list[Clique]]:
    """Positive and negative cliques of one model, each tested over seeds; largest (then strongest) first."""
    tasks, mean = seed_mean_matrix(pgf, model)
    _, _, cube = seed_cube(pgf, model)
    position = {t: i for i, t in enumerate(tasks)}
    out: dict[str, list[Clique]] = {}
    for sign, s in SIGNS.items():
        found = find_cliques(tasks, mean, sign, min_pgf)
        largest = max((len(c) for c in found), default=0)
        cliques = []
        for members in found:
            pairs = [(position[a], position[b]) for a, b in permutations(members, 2)]
            rows, cols = np.array(pairs).T
            per_seed = cube[:, rows, cols]
            per_seed = per_seed[~np.isnan(per_seed)]
            pair_means = mean[rows, cols]
            alternative = "greater" if s > 0 else "less"
            w, p, n = wilcoxon_signed_rank(per_seed, alternative)
            p_pairs = wilcoxon_signed_rank(pair_means, alternative)[1]
            cliques.append(Clique(sign, members, float(pair_means.mean()), float(pair_means[np.argmin(s * pair_means)]),
                                  float((s * per_seed > 0).mean()), w, p, n, p_pairs, len(members) == largest))
        out[sign] = sorted(cliques, key=lambda c: (-len(c.tasks), -s * c.mean_pgf))
    return out


def clique_table(cliques: dict[str, list[Clique]], model: str) -> pl.DataFrame:
    """Flat frame of a model's cliques for logging: model, sign, size, tasks (joined), statistics."""
    rows = [{"model": model, "size": len(c.tasks), **c.as_dict(), "tasks": ", ".join(c.tasks)}
            for group in cliques.values() for c in group]
    schema = {"model": pl.String, "size": pl.Int64, "sign": pl.String, "tasks": pl.String, "mean_pgf": pl.Float64,
              "weakest_pgf": pl.Float64, "seed_consistency": pl.Float64, "wilcoxon_w": pl.Float64,
              "p_value": pl.Float64, "n_values": pl.Int64, "p_value_pairs": pl.Float64, "maximum": pl.Boolean}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _sign(sign: str) -> int:
    if sign not in SIGNS:
        raise ValueError(f"unknown clique sign {sign!r}; expected one of {list(SIGNS)}")
    return SIGNS[sign]
