"""Helpers for the analysis tests: long PGF frames from hand-made arrays, where the released tables live."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from transfer.tasks import TASK_NAMES

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PAPER_PGF = SHARED / "paper_pgf"
PAPER_MODELS = {"3B": "qwen2.5vl-3B-instruct", "7B": "qwen2.5vl-7B-instruct", "32B": "qwen2.5vl-32B-instruct"}


def long_frame(cube: np.ndarray, tasks: list[str] | None = None, model: str = "m") -> pl.DataFrame:
    """Long PGF frame from cube[seed, source, target] (a 2-D matrix is one seed); NaN cells are left out."""
    cube = np.asarray(cube, dtype=float)
    cube = cube[None] if cube.ndim == 2 else cube
    tasks = tasks or TASK_NAMES[: cube.shape[1]]
    seeds, sources, targets = np.meshgrid(np.arange(cube.shape[0]), np.arange(cube.shape[1]),
                                          np.arange(cube.shape[2]), indexing="ij")
    keep = ~np.isnan(cube)
    return pl.DataFrame({
        "model": model,
        "source_task": [tasks[i] for i in sources[keep]],
        "target_task": [tasks[j] for j in targets[keep]],
        "seed": [str(s) for s in seeds[keep]],
        "pgf": cube[keep],
    })
