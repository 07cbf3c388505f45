"""Transfer graph, cliques (found / not found, Wilcoxon p) and data-selection advice on hand-made matrices."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.helpers import long_frame
from transfer.analysis.cliques import find_cliques, model_cliques
from transfer.analysis.graph import edge_table, transfer_graph
from transfer.analysis.selection import selection_advice
from transfer.tasks import TASK_NAMES

T = TASK_NAMES[:5]
# 0,1,2 help each other; 3 helps 0 but 0 hurts 3; 3 and 4 hurt each other; 4 and 0 hurt each other
M = np.array([[0.9, 0.3, 0.2, -0.1, -0.3],
              [0.4, 0.9, 0.1, 0.0, 0.0],
              [0.5, 0.05, 0.9, 0.0, 0.0],
              [0.6, 0.0, 0.0, 0.9, -0.2],
              [-0.5, 0.0, 0.0, -0.4, 0.9]])


def test_graph_keeps_edges_beyond_the_threshold_without_self_loops():
    graph = transfer_graph(long_frame(M), "m", threshold=0.3)
    edges = {(a, b): d["weight"] for a, b, d in graph.edges(data=True)}
    assert edges == {(T[0], T[1]): 0.3, (T[1], T[0]): 0.4, (T[2], T[0]): 0.5, (T[3], T[0]): 0.6,
                     (T[0], T[4]): -0.3, (T[4], T[0]): -0.5, (T[4], T[3]): -0.4}
    assert graph.nodes[T[0]]["abbrev"] == "AS" and graph.nodes[T[0]]["in_task_pgf"] == 0.9
    assert edge_table(graph)["weight"].to_list()[0] == 0.6           # strongest first
    with pytest.raises(ValueError, match="threshold"):
        transfer_graph(long_frame(M), "m", threshold=-1)


def test_cliques_found_and_not_found():
    assert find_cliques(T, M, "positive") == [[T[0], T[1], T[2]]]
    assert find_cliques(T, M, "negative") == [[T[0], T[4]], [T[3], T[4]]]     # no triangle: the pairs
    assert find_cliques(T, M, "positive", min_pgf=0.08) == [[T[0], T[1]], [T[0], T[2]]]   # 2→1 is only 0.05
    assert find_cliques(T, np.zeros((5, 5)), "positive") == []
    with pytest.raises(ValueError, match="sign"):
        find_cliques(T, M, "neutral")


def test_clique_wilcoxon_over_seeds():
    cube = np.stack([M + d for d in (0.0, 0.01, -0.01, 0.02)])
    cliques = model_cliques(long_frame(cube), "m")
    best = cliques["positive"][0]
    assert best.tasks == [T[0], T[1], T[2]] and best.maximum
    assert best.n_values == 24 and best.seed_consistency == 1.0
    assert best.p_value == pytest.approx(2.0**-24)                    # all 24 per-seed values positive
    assert best.mean_pgf == pytest.approx(np.mean([0.3, 0.2, 0.4, 0.1, 0.5, 0.05]) + 0.005)
    assert best.p_value_pairs == pytest.approx(2.0**-6)                # 6 ordered pairs, all positive
    negative = cliques["negative"]
    assert [c.tasks for c in negative] == [[T[0], T[4]], [T[3], T[4]]]
    assert all(c.p_value == pytest.approx(2.0**-8) for c in negative)   # 2 ordered pairs × 4 seeds, all < 0


def test_selection_advice_ranks_sources_above_threshold():
    cube = np.stack([M, M + 0.02])
    advice = selection_advice(long_frame(cube), threshold=0.1)
    target0 = advice.filter(pl.col("target_task") == T[0])
    assert target0["source_task"].to_list() == [T[3], T[2], T[1]]      # 0.61, 0.51, 0.41; the diagonal is not advice
    assert target0["rank"].to_list() == [1, 2, 3] and (target0["seeds_positive"] == 2).all()
    assert target0["ci_low"].null_count() == 3
    intervals = pl.DataFrame({"model": "m", "source_task": T[3], "target_task": T[0], "ci_low": 0.4, "ci_high": 0.8})
    with_ci = selection_advice(long_frame(cube), threshold=0.1, intervals=intervals)
    assert with_ci.filter(pl.col("source_task") == T[3], pl.col("target_task") == T[0])["ci_low"].item() == 0.4


def test_float_residue_of_seed_means_counts_as_zero():
    # seeds +1/3 and −1/3 average to a float residue, not to a negative transfer
    cube = np.zeros((2, 2, 2))
    cube[0, 0, 1], cube[1, 0, 1] = 0.1 + 0.2, -(0.1 + 0.2) + 1e-17
    frame = long_frame(cube)
    assert find_cliques(TASK_NAMES[:2], np.array([[0, -1e-18], [-0.5, 0]]), "negative") == []
    from transfer.analysis.tables import seed_mean_matrix
    from transfer.analysis.transferability import transferability
    _, mean = seed_mean_matrix(frame, "m")
    assert mean[0, 1] == 0.0 and transferability(np.array([[0, -1e-18], [0, 0]]))[1][0] == 0.0
