"""Statistics of the data-selection experiment on constructed and simulated per-question frames."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from transfer.selection.statistics import (
    across_targets,
    collateral,
    experiment_statistics,
    percentile_among,
    target_statistics,
)


def question_frame(runs: dict[tuple, np.ndarray]) -> pl.DataFrame:
    """Per-question frame from {(target_task, arm, draw, seed, eval_task): 0/1 correctness by idx}."""
    keys = list(runs)
    sizes = [len(runs[k]) for k in keys]

    def column(i: int) -> list:
        return [value for k, n in zip(keys, sizes) for value in [k[i]] * n]

    return pl.DataFrame({
        "target_task": column(0), "arm": column(1), "draw": pl.Series(column(2), dtype=pl.Int64),
        "seed": column(3), "eval_task": column(4), "idx": np.concatenate([np.arange(n) for n in sizes]),
        "correct": np.concatenate([np.asarray(runs[k], dtype=bool) for k in keys]),
    })


def first(n_correct: int, n: int) -> np.ndarray:
    """n questions, the first n_correct of them correct."""
    return np.arange(n) < n_correct


def row(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter(*(pl.col(k) == v for k, v in where.items()))
    assert rows.height == 1, where
    return rows.row(0, named=True)


def test_accuracy_is_the_mean_over_seeds_and_draws():
    runs = {("T", "pgf_top", None, 0, "T"): first(6, 10), ("T", "pgf_top", None, 1, "T"): first(8, 10),
            ("T", "base", None, 0, "T"): first(3, 10)}
    for d, counts in enumerate([(2, 4), (5, 5), (9, 7)]):
        for s, c in enumerate(counts):
            runs["T", "random", d, s, "T"] = first(c, 10)
    accuracy, _ = target_statistics(question_frame(runs), n_boot=200)
    top, rand = row(accuracy, arm="pgf_top"), row(accuracy, arm="random")
    assert top["accuracy"] == pytest.approx(0.7) and (top["n_draws"], top["n_seeds"], top["n_questions"]) == (1, 2, 10)
    assert rand["accuracy"] == pytest.approx(32 / 60) and (rand["n_draws"], rand["n_seeds"]) == (3, 2)
    for r in accuracy.iter_rows(named=True):
        assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]


def test_percentile_and_difference_against_the_random_draws():
    runs = {("T", "pgf_top", None, 0, "T"): first(5, 10), ("T", "pgf_top", None, 1, "T"): first(7, 10),
            ("T", "pgf_centred", None, 0, "T"): first(9, 10), ("T", "bottom", None, 0, "T"): first(1, 10)}
    for d, c in enumerate([2, 4, 5, 5, 6, 8]):
        runs["T", "random", d, 0, "T"] = first(c, 10)
    _, versus = target_statistics(question_frame(runs), n_boot=200)
    assert sorted(versus["arm"].to_list()) == ["pgf_centred", "pgf_top"]          # bottom is not compared
    top = row(versus, arm="pgf_top")
    assert top["accuracy"] == pytest.approx(0.6) and top["random_accuracy"] == pytest.approx(0.5)
    assert top["difference"] == pytest.approx(0.1) and top["n_draws"] == 6
    assert top["percentile"] == pytest.approx(4.5 / 6)                              # 4 below, one tie
    assert row(versus, arm="pgf_centred")["percentile"] == 1.0
    assert percentile_among(0.5, np.array([0.5, 0.5])) == 0.5


def test_differences_are_paired_over_questions():
    rng = np.random.default_rng(3)
    same = rng.random(60) < 0.5
    runs = {("T", "pgf_top", None, 0, "T"): same}
    for d in range(5):
        for s in range(3):
            runs["T", "random", d, s, "T"] = same
    accuracy, versus = target_statistics(question_frame(runs), n_boot=300)
    assert row(accuracy, arm="pgf_top")["ci_high"] - row(accuracy, arm="pgf_top")["ci_low"] > 0.1
    top = row(versus, arm="pgf_top")
    assert abs(top["ci_low"]) < 1e-12 and abs(top["ci_high"]) < 1e-12               # same questions in both arms


def simulated_targets(rng: np.random.Generator, n_targets: int, run_sd: float, draw_sd: float,
                      n: int = 80, seeds: int = 3, draws: int = 5) -> pl.DataFrame:
    """Each target: question difficulties U(0.25, 0.75); pgf_top adds 0.1 (true accuracy 0.6), random draws a
    mean-zero shift each (true mean 0.5); every run adds its own mean-zero shift."""
    runs = {}
    for t in range(n_targets):
        target = f"t{t:03d}"
        p = rng.uniform(0.25, 0.75, n)
        for s in range(seeds):
            runs[target, "pgf_top", None, s, target] = rng.random(n) < p + 0.1 + rng.uniform(-run_sd, run_sd)
        for d in range(draws):
            shift = rng.uniform(-draw_sd, draw_sd)
            for s in range(seeds):
                runs[target, "random", d, s, target] = rng.random(n) < p + shift + rng.uniform(-run_sd, run_sd)
    return question_frame(runs)


def coverage(frame: pl.DataFrame, truth: float) -> float:
    return float(((frame["ci_low"] <= truth) & (frame["ci_high"] >= truth)).mean())


# 250 targets: the binomial standard error of a 95 % coverage is about 0.014
def test_question_bootstrap_covers_at_the_nominal_rate_without_run_effects():
    frame = simulated_targets(np.random.default_rng(11), 250, run_sd=0.0, draw_sd=0.1)
    accuracy, versus = target_statistics(frame, n_boot=400, seed=1, resample_seeds=False)
    assert 0.91 <= coverage(accuracy.filter(pl.col("arm") == "pgf_top"), 0.6) <= 0.985
    assert 0.91 <= coverage(versus, 0.1) <= 0.99


def test_nested_bootstrap_covers_with_run_and_draw_effects():
    frame = simulated_targets(np.random.default_rng(12), 250, run_sd=0.1, draw_sd=0.15)
    accuracy, versus = target_statistics(frame, n_boot=400, seed=1)
    assert 0.91 <= coverage(accuracy.filter(pl.col("arm") == "pgf_top"), 0.6) <= 0.99
    assert 0.91 <= coverage(accuracy.filter(pl.col("arm") == "random"), 0.5) <= 0.99
    assert 0.91 <= coverage(versus, 0.1) <= 0.99
    questions_only, _ = target_statistics(frame, n_boot=400, seed=1, resample_seeds=False)
    width = lambda f: float((f["ci_high"] - f["ci_low"]).mean())  # noqa: E731
    assert width(accuracy) > width(questions_only)                                   # seeds add their spread


def test_sign_and_wilcoxon_across_constructed_targets():
    steps = {"pgf_top": [1, 2, 3, 4, 5, 6, 7, -8], "pgf_weighted": [0, 0, 1, 1, 1, 1, 1, 1]}
    runs = {}
    for t in range(8):
        for d in range(5):
            runs[f"t{t}", "random", d, 0, f"t{t}"] = first(50, 100)
        for arm, step in steps.items():
            runs[f"t{t}", arm, None, 0, f"t{t}"] = first(50 + step[t], 100)
    _, versus = target_statistics(question_frame(runs), n_boot=50)
    tests = across_targets(versus)
    top = row(tests, arm="pgf_top")
    assert (top["n_targets"], top["targets_better"], top["n_nonzero"]) == (8, 7, 8)
    assert top["mean_difference"] == pytest.approx(20 / 8 / 100)
    assert top["sign_p"] == pytest.approx(9 / 256)                                   # P(≥ 7 of 8 heads)
    assert top["wilcoxon_w"] == pytest.approx(28)                                     # ranks 1..7 positive
    assert top["wilcoxon_p"] == pytest.approx(25 / 256)                               # 25 subsets of 1..8 sum ≤ 8
    weighted = row(tests, arm="pgf_weighted")
    assert (weighted["targets_better"], weighted["n_nonzero"]) == (6, 6)             # the two ties are dropped
    assert weighted["sign_p"] == pytest.approx(1 / 64)


def test_collateral_is_the_change_on_the_other_tasks_against_base():
    n = 200
    runs = {("T", "base", None, 0, "T"): first(60, n), ("T", "pgf_top", None, 0, "T"): first(180, n),
            ("T", "direct", None, 0, "T"): first(190, n)}
    for task in ("E1", "E2"):
        runs["T", "base", None, 0, task] = first(100, n)
    runs["T", "pgf_top", None, 0, "E1"], runs["T", "pgf_top", None, 0, "E2"] = first(60, n), first(80, n)
    runs["T", "direct", None, 0, "E1"], runs["T", "direct", None, 0, "E2"] = first(140, n), first(120, n)
    table = collateral(question_frame(runs), n_boot=300)
    assert sorted(table["arm"].to_list()) == ["direct", "pgf_top"]
    hurt, helped = row(table, arm="pgf_top"), row(table, arm="direct")
    assert hurt["collateral"] == pytest.approx(-0.15) and hurt["ci_high"] < 0 and hurt["n_eval_tasks"] == 2
    assert helped["collateral"] == pytest.approx(0.15) and helped["ci_low"] > 0
    assert set(experiment_statistics(question_frame(runs), n_boot=50)) == {
        "accuracy", "versus_random", "across_targets", "collateral"}


def test_bad_frames_get_one_line_errors():
    good = {("T", "base", None, 0, "T"): first(3, 10), ("T", "pgf_top", None, 0, "T"): first(5, 10)}
    with pytest.raises(ValueError, match="lacks columns \\['idx'\\]"):
        target_statistics(question_frame(good).drop("idx"))
    shifted = question_frame(good).with_columns(
        pl.when(pl.col("arm") == "base").then(pl.col("idx") + 1).otherwise(pl.col("idx")).alias("idx"))
    with pytest.raises(ValueError, match="same questions"):
        target_statistics(shifted)
    ragged = {**good, ("T", "random", 0, 0, "T"): first(1, 10), ("T", "random", 0, 1, "T"): first(1, 10),
              ("T", "random", 1, 0, "T"): first(1, 10)}
    with pytest.raises(ValueError, match="'random' has draws with different numbers of seeds"):
        target_statistics(question_frame(ragged))
    with pytest.raises(ValueError, match="'U' has no rows scored on itself"):
        target_statistics(question_frame({**good, ("U", "base", None, 0, "T"): first(3, 10)}))
    with pytest.raises(ValueError, match="no 'base' arm scored on eval task 'E'"):
        collateral(question_frame({**good, ("T", "pgf_top", None, 0, "E"): first(3, 10)}))
