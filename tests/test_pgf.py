"""PGF from counts, the baseline join and the guards against mixing cells."""
import polars as pl
import pytest

from transfer.pgf import InconsistentSweepError, base_rows, check_consistent, pgf_long, wide
from transfer.tasks import TASK_NAMES


def scores(rows):
    """rows: (model, source, seed, target, n, correct[, hash])"""
    return pl.DataFrame([{"model": m, "source_task": s, "seed": k, "target_task": t, "n": n, "correct": c,
                          "accuracy": c / n, "config_hash": h[0] if h else "h"} for m, s, k, t, n, c, *h in rows])


def test_paper_worked_examples():
    # 90 % -> 93 % gives 0.30; 40 % -> 50 % gives 0.17 (the paper's worked examples)
    df = scores([("m", "none", 0, "Counting", 100, 90), ("m", "Jigsaw", 0, "Counting", 100, 93),
                 ("m", "none", 0, "Jigsaw", 100, 40), ("m", "Jigsaw", 0, "Jigsaw", 100, 50)])
    long = pgf_long(df).sort("target_task")
    assert long["pgf"].to_list() == pytest.approx([0.30, 10 / 60])
    assert long["base_accuracy"].to_list() == [0.9, 0.4]


def test_perfect_base_keeps_pgf_finite_and_bounded():
    df = scores([("m", "none", 0, "Counting", 10, 10), ("m", "Jigsaw", 0, "Counting", 10, 0),
                 ("m", "none", 0, "Jigsaw", 10, 9), ("m", "Counting", 0, "Jigsaw", 10, 0)])
    long = pgf_long(df)
    assert long.filter(source_task="Jigsaw")["pgf"][0] == -10.0       # gap taken as one question
    assert long.filter(source_task="Counting")["pgf"][0] == -9.0      # -(m - 1), the paper's lower bound


def test_seed_without_baseline_uses_the_lowest_seeds_baseline():
    df = scores([("m", "none", 0, "Counting", 10, 5), ("m", "Jigsaw", 0, "Counting", 10, 6),
                 ("m", "Jigsaw", 1, "Counting", 10, 10)])
    assert pgf_long(df).sort("seed")["pgf"].to_list() == pytest.approx([0.2, 1.0])


def test_the_lowest_seeds_baseline_serves_every_seed():
    """The base model does not depend on the seed: one rule, the lowest seed's `none` cell, for every seed."""
    df = scores([("m", "none", 1, "Counting", 10, 0), ("m", "none", 0, "Counting", 10, 5),
                 ("m", "Jigsaw", 1, "Counting", 10, 5), ("m", "none", 2, "Jigsaw", 10, 2),
                 ("m", "Counting", 0, "Jigsaw", 10, 6)])
    long = pgf_long(df).sort("target_task")
    assert long["pgf"].to_list() == pytest.approx([0.0, 0.5])
    assert base_rows(df).sort("target_task")[["seed", "correct"]].rows() == [(0, 5), (2, 2)]


def test_different_question_counts_refuse_to_mix():
    df = scores([("m", "none", 0, "Counting", 10, 5), ("m", "Jigsaw", 0, "Counting", 12, 6)])
    with pytest.raises(InconsistentSweepError, match="same questions"):
        pgf_long(df)


def test_different_configs_refuse_to_mix():
    df = scores([("m", "none", 0, "Counting", 10, 5, "a"), ("m", "Jigsaw", 0, "Counting", 10, 6, "b")])
    with pytest.raises(InconsistentSweepError, match="config_hash a, b"):
        check_consistent(df)


def test_wide_matrix_orders_rows_and_columns_and_leaves_holes_empty():
    df = scores([("m", "none", 0, t, 10, 5) for t in TASK_NAMES] + [("m", "Jigsaw", 0, t, 10, 7) for t in TASK_NAMES]
                + [("m", "Jigsaw", 1, t, 10, 9) for t in TASK_NAMES])
    matrix = wide(pgf_long(df), "m", "pgf", TASK_NAMES)
    assert matrix.columns == ["source_task", *TASK_NAMES] and matrix["source_task"].to_list() == TASK_NAMES
    assert matrix.filter(source_task="Jigsaw")["Counting"][0] == pytest.approx((0.4 + 0.8) / 2)
    assert matrix.filter(source_task="Counting")["Counting"][0] is None
