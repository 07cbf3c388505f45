"""The arms of the data-selection experiment on hand-made PGF matrices: rankings, shares, draws, bad inputs."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from transfer.selection.arms import (
    Arm,
    arms_for_target,
    bottom_k,
    double_centred,
    pgf_shares,
    pgf_toward,
    random_draws,
    top_k,
)
from transfer.tasks import TASK_NAMES

T = TASK_NAMES[4]                                   # Jigsaw, the target throughout
A, B, C, D, E, F = (TASK_NAMES[i] for i in (0, 1, 2, 3, 5, 6))
LAST = TASK_NAMES[12]


def long_pgf(seeds: list[np.ndarray], model: str = "m") -> pl.DataFrame:
    """Long PGF frame from one 13×13 matrix per seed (rows = source, columns = target)."""
    rows = [{"model": model, "source_task": s, "target_task": t, "seed": str(k), "pgf": float(m[i, j])}
            for k, m in enumerate(seeds) for i, s in enumerate(TASK_NAMES) for j, t in enumerate(TASK_NAMES)]
    return pl.DataFrame(rows)


def matrix() -> np.ndarray:
    """A helps every target by 0.5; toward T: B 0.4, C and D 0.2 (a tie), E −0.3, F −0.1, the rest 0."""
    m = np.zeros((13, 13))
    m[0, :] = 0.5
    j = TASK_NAMES.index(T)
    for source, value in ((B, 0.4), (C, 0.2), (D, 0.2), (E, -0.3), (F, -0.1)):
        m[TASK_NAMES.index(source), j] = value
    np.fill_diagonal(m, 0.9)                       # in-task PGF: never in T's pool
    return m


def seeds() -> list[np.ndarray]:
    """Two seeds whose mean is matrix(); seed 0 alone would put D on top."""
    jitter = np.zeros((13, 13))
    jitter[TASK_NAMES.index(D), TASK_NAMES.index(T)] = 0.3
    return [matrix() + jitter, matrix() - jitter]


def by_name(arms: list[Arm]) -> dict[str, Arm]:
    return {a.name: a for a in arms if a.name != "random"}


def test_double_centred_on_a_hand_computed_4x4():
    m = np.array([[9.0, 1, 2, 3], [4, 9, 6, 0], [1, 1, 9, 1], [2, 0, 4, 9]])
    # r = (2, 10/3, 1, 2), c = (7/3, 2/3, 4, 4/3), g = 25/12; in twelfths:
    expected = np.array([[np.nan, 5, -23, 21], [5, np.nan, 9, -31], [-3, 17, np.nan, 9], [-3, -7, 1, np.nan]]) / 12
    np.testing.assert_allclose(double_centred(m), expected, atol=1e-12)


def test_double_centred_leaves_missing_cells_out_of_the_means():
    m = np.array([[0.0, 1, 2], [3, 0, np.nan], [4, 5, 0]])
    # r = (1.5, 3, 4.5), c = (3.5, 3, 2), g = 3 over the five known off-diagonal cells
    expected = np.array([[np.nan, -0.5, 1.5], [-0.5, np.nan, np.nan], [-1.0, 0.5, np.nan]])
    np.testing.assert_allclose(double_centred(m), expected, atol=1e-12)
    with pytest.raises(ValueError, match="square"):
        double_centred(np.zeros((2, 3)))


def test_top_and_bottom_k_break_ties_by_name_and_skip_nan():
    scores = {"b": 0.5, "a": 0.5, "c": 0.9, "d": math.nan, "e": -0.1}
    assert top_k(scores, 2) == ("c", "a")
    assert top_k(scores, 3) == ("c", "a", "b")
    assert bottom_k(scores, 2) == ("e", "a")
    assert bottom_k(scores, 4) == ("e", "a", "b", "c")
    with pytest.raises(ValueError, match="k=5"):
        top_k(scores, 5)


def test_pgf_shares_use_the_positive_part_and_fall_back_to_equal():
    assert pgf_shares([0.3, -0.1, 0.1]) == pytest.approx((0.75, 0.0, 0.25))
    assert pgf_shares([-0.1, 0.0, -0.2]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_pgf_toward_uses_seed_means_and_centres_on_the_13x13_matrix():
    raw, centred = pgf_toward(long_pgf(seeds()), "m", T)
    assert set(raw) == set(TASK_NAMES) - {T}
    assert raw[D] == pytest.approx(0.2) and raw[A] == pytest.approx(0.5)
    column_mean = (0.5 + 0.4 + 0.2 + 0.2 - 0.3 - 0.1) / 12
    grand = (0.5 * 12 + 0.4 + 0.2 + 0.2 - 0.3 - 0.1) / 156
    assert centred[B] == pytest.approx(0.4 - 0.4 / 12 - column_mean + grand)
    assert centred[A] == pytest.approx(0.5 - 0.5 - column_mean + grand)       # helps T no more than any target


def test_arms_rank_sources_weight_them_and_keep_the_target_out():
    arms = arms_for_target(long_pgf(seeds()), "m", T, k=3, n_random=6, seed=0)
    assert [a.name for a in arms] == ["base", "direct", "uniform", *["random"] * 6,
                                      "pgf_top", "pgf_weighted", "pgf_centred", "bottom"]
    named = by_name(arms)
    assert named["base"] == Arm("base", (), ())
    assert named["direct"] == Arm("direct", (T,), (1.0,))
    assert named["uniform"].sources == tuple(t for t in TASK_NAMES if t != T)
    assert named["uniform"].weights == pytest.approx((1 / 12,) * 12)
    assert named["pgf_top"].sources == (A, B, C)                          # C before D on the tie, by name
    assert named["pgf_weighted"].sources == (A, B, C)
    assert named["pgf_weighted"].weights == pytest.approx((0.5 / 1.1, 0.4 / 1.1, 0.2 / 1.1))
    assert named["pgf_centred"].sources == (B, C, D)                      # A helps every target alike
    assert named["bottom"].sources == (E, F, "Relative_Depth")           # the zeros tie: first by name
    for arm in arms:
        assert T not in arm.sources or arm.name == "direct"
        assert arm.draw is None or arm.name == "random"
        assert not arm.sources or sum(arm.weights) == pytest.approx(1.0)


def test_pgf_weighted_falls_back_to_pgf_top_with_a_note_when_no_top_source_helps():
    hurting = matrix()
    hurting[:, TASK_NAMES.index(T)] = np.where(np.arange(13) == TASK_NAMES.index(T), 0.9, -0.2)
    hurting[TASK_NAMES.index(B), TASK_NAMES.index(T)] = 0.0                 # the best source: no transfer
    named = by_name(arms_for_target(long_pgf([hurting]), "m", T, k=3, n_random=5, seed=0))
    assert named["pgf_weighted"].sources == named["pgf_top"].sources
    assert named["pgf_weighted"].weights == named["pgf_top"].weights == pytest.approx((1 / 3,) * 3)
    assert "no top-3 source has a positive PGF" in named["pgf_weighted"].note
    helped = by_name(arms_for_target(long_pgf(seeds()), "m", T, k=3, n_random=5, seed=0))
    assert all(arm.note is None for arm in helped.values())


def test_the_centred_ranking_needs_more_than_the_targets_column():
    only_t = long_pgf(seeds()).filter(pl.col("target_task") == T)
    with pytest.raises(ValueError, match="PGF toward 1 target"):
        pgf_toward(only_t, "m", T)


def test_random_draws_are_reproducible_distinct_and_never_hold_the_target():
    pgf = long_pgf(seeds())
    draws = [a for a in arms_for_target(pgf, "m", T, 3, 10, seed=7) if a.name == "random"]
    again = [a for a in arms_for_target(pgf, "m", T, 3, 10, seed=7) if a.name == "random"]
    other = [a for a in arms_for_target(pgf, "m", T, 3, 10, seed=8) if a.name == "random"]
    assert draws == again and draws != other
    assert [a.draw for a in draws] == list(range(10))
    assert len({a.sources for a in draws}) == 10
    for arm in draws:
        assert len(set(arm.sources)) == 3 and T not in arm.sources
        assert list(arm.sources) == [t for t in TASK_NAMES if t in arm.sources]
        assert arm.weights == pytest.approx((1 / 3,) * 3)


def test_random_draws_cover_every_subset_before_repeating():
    pool = [t for t in TASK_NAMES if t != T]
    rng = np.random.default_rng(0)
    draws = random_draws(pool, 11, 13, rng)
    assert len(set(draws[:12])) == 12                                    # all C(12, 11) subsets once
    assert random_draws(pool, 12, 5, rng) == [tuple(pool)] * 5


def test_oracle_reads_the_planted_positive_donors():
    planted = pl.DataFrame({"source_task": [B, E, F, LAST, T, T],
                            "target_task": [T, T, T, T, B, T],
                            "relation": ["positive", "negative", "none", "positive", "positive", "positive"]})
    oracle = arms_for_target(long_pgf(seeds()), "m", T, 3, 5, 0, planted=planted)[-1]
    assert oracle == Arm("oracle", (B, LAST), (0.5, 0.5))
    without = arms_for_target(long_pgf(seeds()), "m", E, 3, 5, 0, planted=planted)
    assert "oracle" not in [a.name for a in without]                     # E has no planted donor
    unknown = planted.with_columns(pl.lit("maybe").alias("relation"))
    with pytest.raises(ValueError, match="relation"):
        arms_for_target(long_pgf(seeds()), "m", T, 3, 5, 0, planted=unknown)


def test_bad_inputs_name_the_bad_value():
    pgf = long_pgf(seeds())
    with pytest.raises(ValueError, match="'Nope'"):
        arms_for_target(pgf, "m", "Nope", 3, 5, 0)
    with pytest.raises(ValueError, match="'other'"):
        arms_for_target(pgf, "other", T, 3, 5, 0)
    for k in (0, 13):
        with pytest.raises(ValueError, match=f"k={k}"):
            arms_for_target(pgf, "m", T, k, 5, 0)
    with pytest.raises(ValueError, match="n_random=4"):
        arms_for_target(pgf, "m", T, 3, 4, 0)
    partial = pl.concat([pgf, long_pgf(seeds(), model="m2").filter(pl.col("target_task") != T)])
    with pytest.raises(ValueError, match=f"'m2' has no PGF rows toward target '{T}'"):
        arms_for_target(partial, "m2", T, 3, 5, 0)
    two_sources = pgf.filter((pl.col("target_task") != T) | pl.col("source_task").is_in([A, B]))
    with pytest.raises(ValueError, match="k=3 exceeds the 2 sources"):
        arms_for_target(two_sources, "m", T, 3, 5, 0)


def test_arm_rejects_inconsistent_weights():
    with pytest.raises(ValueError, match="summing to 1"):
        Arm("x", (A,), (0.5,))
    with pytest.raises(ValueError, match="repeats"):
        Arm("x", (A, A), (0.5, 0.5))
    with pytest.raises(ValueError, match="weights"):
        Arm("x", (A, B), (1.0,))
