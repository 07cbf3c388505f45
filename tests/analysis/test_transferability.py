"""Δ±/Θ± on hand-made matrices with answers worked out by hand (the paper's definitions)."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tests.helpers import long_frame
from transfer.analysis.transferability import averages, malleability, transfer_scores, transferability
from transfer.tasks import TASK_NAMES

M = np.array([[0.5, 0.2, -0.1],
              [0.3, -0.2, 0.0],
              [-0.4, -0.6, 0.9]])
C2 = 1 - math.exp(-1 / 2)          # breadth of one entry out of N = 2 other tasks


def test_transferability_excluding_the_diagonal():
    pos, neg = transferability(M)
    assert pos == pytest.approx([C2 * 0.2, C2 * 0.3, 0.0])               # FD has no positive entry: p = 0 → 0
    assert neg == pytest.approx([C2 * -0.1, 0.0, (1 - math.exp(-1)) / 2 * (-1.0)])   # CN's 0.0 counts nowhere


def test_malleability_is_the_same_formula_over_columns():
    pos, neg = malleability(M)
    assert pos == pytest.approx([C2 * 0.3, C2 * 0.2, 0.0])
    assert neg == pytest.approx([C2 * -0.4, C2 * -0.6, C2 * -0.1])


def test_including_the_diagonal_changes_n_and_the_sums():
    pos, neg = transferability(M, include_diagonal=True)
    assert pos == pytest.approx([(1 - math.exp(-2 / 3)) / 2 * 0.7, (1 - math.exp(-1 / 3)) * 0.3,
                                 (1 - math.exp(-1 / 3)) * 0.9])
    assert neg[1] == pytest.approx((1 - math.exp(-1 / 3)) * -0.2)


def test_all_zero_matrix_and_bad_shape():
    pos, neg = transferability(np.zeros((4, 4)))
    assert (pos == 0).all() and (neg == 0).all()
    with pytest.raises(ValueError, match="square"):
        transferability(np.zeros((2, 3)))


def test_missing_source_row_is_nan_not_zero():
    matrix = M.copy()
    matrix[1, :] = np.nan                                              # CN was never finetuned on
    pos, _ = transferability(matrix)
    assert np.isnan(pos[1]) and pos[0] == pytest.approx(C2 * 0.2)


def test_scores_per_seed_and_on_the_seed_mean():
    cube = np.stack([M, M + 0.2])
    scores = transfer_scores(long_frame(cube))
    assert sorted(scores["seed"].unique().to_list()) == ["0", "1", "mean"]
    on_mean = scores.filter(pl.col("seed") == "mean")
    assert on_mean["task"].to_list() == TASK_NAMES[:3]
    assert on_mean["delta_pos"].to_numpy() == pytest.approx(transferability(M + 0.1)[0])
    per_seed = scores.filter(pl.col("seed") == "1")
    assert per_seed["theta_neg"].to_numpy() == pytest.approx(malleability(M + 0.2)[1])
    assert transfer_scores(long_frame(cube), include_diagonal=True).filter(pl.col("seed") == "mean")[
        "delta_pos"].to_numpy() == pytest.approx(transferability(M + 0.1, include_diagonal=True)[0])


def test_averages_per_model_and_level():
    scores = transfer_scores(pl.concat([long_frame(np.stack([M, M]), model="x-3B"),
                                        long_frame(np.stack([2 * M, 2 * M]), model="x-7B")]))
    per_model = averages(scores)
    assert per_model["model"].to_list() == ["x-3B", "x-7B"]
    expected = np.mean(transferability(M)[0])
    assert per_model["delta_pos"].to_list() == pytest.approx([expected, 2 * expected])
    assert per_model["delta_pos_std"].to_list() == pytest.approx([0.0, 0.0])
    by_level = averages(scores, "level").filter(pl.col("model") == "x-3B")
    # AS and FD are high-level, CN is mid-level (transfer.tasks)
    high = by_level.filter(pl.col("level") == "high")["delta_pos"].item()
    assert high == pytest.approx((C2 * 0.2 + 0.0) / 2)
