"""transfer.stats: rank tests against hand-computed values, bootstrap coverage, permutation calibration."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from transfer.pgf import pgf_long
from transfer.stats import (
    _bootstrap_block,
    cell_intervals,
    paired_bootstrap_pgf,
    permutation_test,
    pgf_from_counts,
    rankdata,
    sign_test,
    spearman,
    stratified_permutation_test,
    wilcoxon_signed_rank,
)


def test_rankdata_midranks():
    assert rankdata(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.parametrize("x, alternative, w_plus, p", [
    ([1, 2, 3, 4], "greater", 10.0, 1 / 16),               # all 16 sign patterns, only one reaches 10
    ([1, -2, 3, 4, 5], "greater", 13.0, 3 / 32),           # W+ >= 13 ⇔ the negative ranks sum to <= 2: {}, {1}, {2}
    ([1, -2, 3, 4, 5], "less", 13.0, 30 / 32),              # P(W+ <= 13) = 1 − P(W+ >= 14) = 1 − 2/32
    ([1, 1, -1, 2], "greater", 8.0, 4 / 16),               # mid-ranks 2,2,2,4: W+ >= 8 in 4 of 16 patterns
    ([0, 0, 1, 2, 3, 4], "greater", 10.0, 1 / 16),         # zeros are dropped
    ([1, -2, 3, 4, 5], "two-sided", 13.0, 6 / 32),
])
def test_wilcoxon_exact_hand_values(x, alternative, w_plus, p):
    w, pval, n = wilcoxon_signed_rank(np.array(x, dtype=float), alternative)
    assert w == w_plus
    assert pval == pytest.approx(p, abs=1e-12)
    assert n == len([v for v in x if v != 0])


def test_wilcoxon_normal_approximation_matches_exact_near_the_switch():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 1.0, 100)                           # n = 100: still exact
    _, exact, _ = wilcoxon_signed_rank(x, "greater")
    y = np.concatenate([x, [1e-9]])                         # n = 101: normal approximation, nearly the same data
    _, approx, _ = wilcoxon_signed_rank(y, "greater")
    assert exact < 0.05 and approx == pytest.approx(exact, rel=0.1)


def test_wilcoxon_degenerate_and_bad_input():
    assert wilcoxon_signed_rank(np.zeros(5)) == (0.0, 1.0, 0)
    with pytest.raises(ValueError, match="alternative"):
        wilcoxon_signed_rank(np.ones(3), "bigger")
    with pytest.raises(ValueError, match="NaN"):
        wilcoxon_signed_rank(np.array([1.0, np.nan]))


def test_sign_test_hand_values():
    assert sign_test(np.array([1, 2, 3, -1.0]), "greater") == (3, pytest.approx(5 / 16), 4)
    assert sign_test(np.array([1, 1, 1, 1.0]), "greater")[1] == pytest.approx(1 / 16)


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(1 - 6 * 4 / (5 * 24))   # Σd² = 4
    with pytest.raises(ValueError, match="equal length"):
        spearman([1, 2], [1, 2, 3])


def test_permutation_test_detects_a_shift_and_is_calibrated():
    rng = np.random.default_rng(0)
    diff, p = permutation_test(rng.normal(1, 1, 20), rng.normal(0, 1, 20), "greater", 2000, rng)
    assert diff > 0 and p < 0.01
    pvals = np.array([permutation_test(rng.normal(size=8), rng.normal(size=12), "greater", 200, rng)[1]
                      for _ in range(300)])
    assert abs((pvals < 0.05).mean() - 0.05) < 0.04          # binomial sd at 300 draws ≈ 0.013
    assert abs((pvals < 0.5).mean() - 0.5) < 0.1
    assert np.histogram(pvals, bins=5, range=(0, 1))[0].min() > 30   # roughly uniform (60 per bin expected)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_permutation_test_is_calibrated_for_a_few_cells_against_many(alternative):
    # The planted-pair test of summary.json: a handful of cells against ~140 unplanted, skewed values.
    rng = np.random.default_rng(4)
    pvals = np.array([permutation_test(rng.lognormal(size=4), rng.lognormal(size=142), alternative, 200, rng)[1]
                      for _ in range(300)])
    assert 0.02 <= (pvals < 0.05).mean() <= 0.09                  # binomial sd at 300 draws ≈ 0.013
    assert 0.4 <= (pvals < 0.5).mean() <= 0.6
    shift = 2.0 if alternative == "greater" else -2.0
    _, p = permutation_test(rng.normal(shift, 1, 4), rng.normal(0, 1, 142), alternative, 2000, rng)
    assert p < 0.01


def test_stratified_permutation_test_hand_value_and_edge_cases():
    # stratum a: members 3 (rest 1, 2 -> mean 1.5): +1.5; stratum b: member 10 (rest 4 -> 4): +6; c has no member
    values, members = [3, 1, 2, 10, 4, 7], [True, False, False, True, False, False]
    excess, p = stratified_permutation_test(values, members, list("aaabbc"), "greater", 500)
    assert excess == pytest.approx((1.5 + 6) / 2) and 0 < p <= 1
    with pytest.raises(ValueError, match="both members and non-members"):
        stratified_permutation_test([1, 2], [True, True], ["a", "a"])
    with pytest.raises(ValueError, match="differ in length"):
        stratified_permutation_test([1, 2], [True], ["a", "a"])


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_stratified_permutation_test_is_calibrated_where_strata_differ_and_the_pooled_test_is_not(alternative):
    # 13 target columns with very different levels; the group (2 cells in each of 6 columns) sits in the high
    # (or low) ones, which fools the pooled test but not the stratified one
    rng = np.random.default_rng(5)
    strata = np.repeat(np.arange(13), 12)
    level = np.linspace(-1.5, 1.5, 13) * (1 if alternative == "greater" else -1)
    members = np.zeros(156, bool)
    members[[12 * c + k for c in range(7, 13) for k in range(2)]] = True
    stratified, pooled = [], []
    for _ in range(200):
        values = level[strata] + rng.normal(0, 0.3, 156)
        stratified.append(stratified_permutation_test(values, members, strata, alternative, 200, rng)[1])
        pooled.append(permutation_test(values[members], values[~members], alternative, 200, rng)[1])
    stratified = np.array(stratified)
    assert 0.01 <= (stratified < 0.05).mean() <= 0.1 and 0.38 <= (stratified < 0.5).mean() <= 0.62
    assert (np.array(pooled) < 0.05).mean() > 0.9
    values = level[strata] + rng.normal(0, 0.3, 156) + np.where(members, 0.5 if alternative == "greater" else -0.5, 0)
    assert stratified_permutation_test(values, members, strata, alternative, 2000, rng)[1] < 0.01


def test_pgf_from_counts_worked_examples_and_perfect_base():
    # the paper's worked examples: 90 % → 93 % gives 0.30; 40 % → 50 % gives 0.17
    assert pgf_from_counts(93, 90, 100) == pytest.approx(0.30)
    assert pgf_from_counts(50, 40, 100) == pytest.approx(1 / 6)
    assert pgf_from_counts(98, 100, 100) == pytest.approx(-2.0)   # perfect base: denominator of one question
    assert pgf_from_counts(0, 99, 100) == pytest.approx(-99.0)    # the lower bound −(m−1)


def _simulate_pair(rng, n, p_base, gain, seeds=1):
    base = rng.random(n) < p_base
    ft = base | (rng.random((seeds, n)) < gain)
    return base, ft


def test_paired_bootstrap_covers_the_true_pgf_at_the_nominal_rate():
    # Population: base accuracy 0.6, finetuning flips a wrong answer to right with probability 0.25, so the
    # true PGF (population accuracies) is 0.25. Each replicate draws 150 fresh questions.
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(300):
        base, ft = _simulate_pair(rng, 150, 0.6, 0.25)
        mean, lo, hi = paired_bootstrap_pgf(base, ft[0], n_boot=400, rng=rng)
        assert lo <= mean <= hi
        hits.append(lo <= 0.25 <= hi)
    assert 0.90 <= np.mean(hits) <= 0.985                    # nominal 0.95; binomial sd ≈ 0.013


# (P(ft right | base right), P(ft right | base wrong)): pure gain, net loss, mixed, large loss, no change
BLOCK_CELLS = np.array([(1.0, 0.25), (0.8, 0.1), (0.9, 0.3), (0.7, 0.0), (0.95, 0.05)])


def test_bootstrap_block_covers_pgf_and_dacc_with_gains_and_losses():
    # Finetuning may also break answers the base got right. With base accuracy b and the two conditional
    # probabilities, the population accuracy is a = b·keep + (1 − b)·gain: true Δacc = a − b and true
    # PGF = (a − b) / (1 − b). Five cells share each replicate's 150 fresh questions, as in cell_intervals.
    rng = np.random.default_rng(0)
    p_base, n = 0.5, 150
    keep, gain = BLOCK_CELLS[:, :1, None], BLOCK_CELLS[:, 1:, None]                  # (cells, 1, 1)
    acc = p_base * BLOCK_CELLS[:, 0] + (1 - p_base) * BLOCK_CELLS[:, 1]
    true_dacc, true_pgf = acc - p_base, (acc - p_base) / (1 - p_base)
    hits = {"pgf": [], "dacc": []}
    for _ in range(300):
        base = rng.random(n) < p_base
        u = rng.random((len(BLOCK_CELLS), 1, n))
        ft = np.where(base, u < keep, u < gain).astype(float)
        out = _bootstrap_block(base.astype(float), ft, 400, rng)
        hits["pgf"].append((out["ci_low"] <= true_pgf) & (true_pgf <= out["ci_high"]))
        hits["dacc"].append((out["dacc_low"] <= true_dacc) & (true_dacc <= out["dacc_high"]))
    for name, cell_hits in hits.items():
        rate = np.mean(cell_hits, axis=0)                                              # per cell
        assert ((0.88 <= rate) & (rate <= 0.995)).all(), (name, rate)                  # binomial sd ≈ 0.013
        assert 0.92 <= rate.mean() <= 0.97, (name, rate)


def test_paired_bootstrap_with_seeds_two_levels_is_conservative_questions_only_is_nominal():
    # Runs differ only by question-level noise here, so resampling questions already carries it: the
    # two-level default over-covers (safe for "interval excludes 0"), questions-only is nominal.
    rng = np.random.default_rng(1)
    hits = {True: [], False: []}
    widths = {True: [], False: []}
    for _ in range(150):
        base, ft = _simulate_pair(rng, 130, 0.5, 0.2, seeds=4)
        for resample_seeds in (True, False):
            _, lo, hi = paired_bootstrap_pgf(base, ft, n_boot=400, rng=rng, resample_seeds=resample_seeds)
            hits[resample_seeds].append(lo <= 0.2 <= hi)
            widths[resample_seeds].append(hi - lo)
    assert np.mean(hits[True]) >= 0.95
    assert 0.88 <= np.mean(hits[False]) <= 0.99
    assert np.median(widths[False]) < np.median(widths[True]) < 0.25


def test_paired_bootstrap_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="share n questions"):
        paired_bootstrap_pgf(np.ones(5), np.ones((2, 4)))


def _predictions(rng, models=("a",), sources=("Art_Style", "Counting"), targets=("Jigsaw", "Counting"), seeds=3, n=40):
    rows = []
    for model in models:
        for target in targets:
            base = rng.random(n) < 0.5
            rows.append(pl.DataFrame({"model": model, "source_task": "none", "seed": "0", "target_task": target,
                                      "idx": np.arange(n)[::-1], "correct": base[::-1]}))   # unsorted on purpose
            for source in sources:
                for s in range(seeds):
                    ft = base | (rng.random(n) < 0.3)
                    rows.append(pl.DataFrame({"model": model, "source_task": source, "seed": str(s),
                                              "target_task": target, "idx": np.arange(n), "correct": ft}))
    return pl.concat(rows)


def _pgf_long(preds: pl.DataFrame) -> pl.DataFrame:
    """The reducer's PGF from counts (transfer.pgf), for comparison with the bootstrap's point estimates."""
    scores = (preds.group_by("model", "source_task", "seed", "target_task")
              .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("correct"))
              .with_columns((pl.col("correct") / pl.col("n")).alias("accuracy")))
    return pgf_long(scores)


def test_cell_intervals_agrees_with_counts_and_per_cell_bootstrap():
    rng = np.random.default_rng(2)
    preds = _predictions(rng)
    out = cell_intervals(preds, n_boot=300)
    assert out.columns == ["model", "source_task", "target_task", "pgf_mean", "pgf_std", "ci_low", "ci_high",
                           "n_seeds", "dacc_mean", "dacc_low", "dacc_high"]
    assert out.height == 4 and (out["n_seeds"] == 3).all()
    assert ((out["ci_low"] <= out["pgf_mean"]) & (out["pgf_mean"] <= out["ci_high"])).all()
    assert ((out["dacc_low"] <= out["dacc_mean"]) & (out["dacc_mean"] <= out["dacc_high"])).all()
    counts = _pgf_long(preds).group_by("model", "source_task", "target_task").agg(
        pl.col("pgf").mean(), pl.col("pgf").std().alias("std"))
    joined = out.join(counts, on=["model", "source_task", "target_task"])
    assert np.allclose(joined["pgf_mean"], joined["pgf"]) and np.allclose(joined["pgf_std"], joined["std"])
    one = preds.filter((pl.col("source_task") == "Art_Style") & (pl.col("target_task") == "Jigsaw")).sort("seed", "idx")
    base = preds.filter((pl.col("source_task") == "none") & (pl.col("target_task") == "Jigsaw")).sort("idx")
    mean, _, _ = paired_bootstrap_pgf(base["correct"].to_numpy(), one["correct"].to_numpy().reshape(3, -1))
    assert mean == pytest.approx(out.filter((pl.col("source_task") == "Art_Style")
                                            & (pl.col("target_task") == "Jigsaw"))["pgf_mean"].item())


def test_cell_intervals_one_line_errors():
    rng = np.random.default_rng(3)
    preds = _predictions(rng)
    with pytest.raises(ValueError, match="lacks columns"):
        cell_intervals(preds.drop("idx"))
    with pytest.raises(ValueError, match="no base predictions"):
        cell_intervals(preds.filter(pl.col("source_task") != "none"))
    short = preds.filter(~((pl.col("source_task") == "Counting") & (pl.col("seed") == "1") & (pl.col("idx") == 0)))
    with pytest.raises(ValueError, match="do not cover"):
        cell_intervals(short)
    with pytest.raises(ValueError, match="same questions"):
        _pgf_long(short)
