"""The task transfer graph: a directed edge i→j weighted by the seed-mean PGF, kept when |PGF| ≥ threshold."""
from __future__ import annotations

import networkx as nx
import numpy as np
import polars as pl

from transfer.analysis.tables import seed_mean_matrix, seed_std_matrix
from transfer.tasks import TASKS


def transfer_graph(pgf: pl.DataFrame, model: str, threshold: float = 0.25) -> nx.DiGraph:
    """DiGraph of one model: nodes are tasks (abbrev, level, granularity, in-task PGF), edges i→j (i ≠ j)
    with |seed-mean PGF| ≥ threshold, carrying weight (seed mean), std (over seeds) and sign (+1 / −1)."""
    if threshold < 0:
        raise ValueError(f"graph threshold must be >= 0, got {threshold}")
    tasks, mean = seed_mean_matrix(pgf, model)
    _, std = seed_std_matrix(pgf, model)
    graph = nx.DiGraph(model=model, threshold=threshold)
    for i, task in enumerate(tasks):
        info = TASKS[task]
        graph.add_node(task, abbrev=info.abbrev, level=info.level, granularity=info.granularity,
                       in_task_pgf=None if np.isnan(mean[i, i]) else float(mean[i, i]))
    for i, j in zip(*np.nonzero(~np.isnan(mean) & (np.abs(np.nan_to_num(mean)) >= threshold))):
        if i != j and mean[i, j] != 0:
            graph.add_edge(tasks[i], tasks[j], weight=float(mean[i, j]),
                           std=None if np.isnan(std[i, j]) else float(std[i, j]), sign=int(np.sign(mean[i, j])))
    return graph


def edge_table(graph: nx.DiGraph) -> pl.DataFrame:
    """The graph's edges as a frame (source_task, target_task, weight, std, sign), strongest first."""
    rows = [{"source_task": a, "target_task": b, **data} for a, b, data in graph.edges(data=True)]
    schema = {"source_task": pl.String, "target_task": pl.String, "weight": pl.Float64, "std": pl.Float64,
              "sign": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.sort(pl.col("weight").abs(), descending=True)
