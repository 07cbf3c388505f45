"""The experiment's choice of arms from a finished sweep's stored predictions (`select_arms`, what
`python -m transfer.select` runs): the PGF matrix on the selection halves, and the double-centred ranking on all 13
target columns whatever the targets chosen."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from transfer.selection.experiment import question_halves, select_arms
from transfer.tasks import BASELINE, TASK_NAMES

QUESTIONS = 8                               # per task; the selection half holds 4
T, U = "Jigsaw", "Counting"


def planted_counts() -> np.ndarray:
    """Correct answers on each target's 4 selection questions, per (source row, target column); the base model
    answers none of them, so PGF = count / 4."""
    counts = np.random.default_rng(4).integers(0, 5, (13, 13))
    np.fill_diagonal(counts, 4)
    return counts


def predictions(counts: np.ndarray) -> pl.DataFrame:
    """A finished 1-seed sweep's predictions: the none cell and one cell per source, every task evaluated. On the
    scoring halves every cell's correctness runs against its selection counts (reading them would change the arms)."""
    gold = {t: [i % 2 for i in range(QUESTIONS)] for t in TASK_NAMES}
    frame = pl.DataFrame([{"model": "m", "source_task": BASELINE, "seed": 0, "target_task": t, "idx": f"{t}-{i}",
                           "gold": g, "correct": False} for t in TASK_NAMES for i, g in enumerate(gold[t])])
    halves = question_halves(frame, "m", [], "selection")
    rows = []
    for i, source in enumerate(TASK_NAMES):
        for j, target in enumerate(TASK_NAMES):
            chosen, scored = halves[target]
            rows += [{"idx": q, "correct": bool(k < counts[i, j])} for k, q in enumerate(chosen)]
            rows += [{"idx": q, "correct": bool(k >= counts[i, j])} for k, q in enumerate(scored)]
            for row in rows[-QUESTIONS:]:
                row.update(model="m", source_task=source, seed=0, target_task=target,
                           gold=int(row["idx"].rsplit("-", 1)[1]) % 2)
    return pl.concat([frame, pl.DataFrame(rows).select(frame.columns)])


def by_hand(pgf: np.ndarray) -> np.ndarray:
    """m_ij - (mean of row i) - (mean of column j) + (grand mean), all over the 156 off-diagonal cells."""
    n = len(pgf)
    off = [(i, j) for i in range(n) for j in range(n) if i != j]
    row = [sum(pgf[i, j] for j in range(n) if j != i) / (n - 1) for i in range(n)]
    col = [sum(pgf[i, j] for i in range(n) if i != j) / (n - 1) for j in range(n)]
    grand = sum(pgf[i, j] for i, j in off) / len(off)
    out = np.full((n, n), np.nan)
    for i, j in off:
        out[i, j] = pgf[i, j] - row[i] - col[j] + grand
    return out


def _select(frame: pl.DataFrame, targets: list[str]):
    return select_arms(frame, "m", targets, salt="selection", k=3, n_random=5, examples=10, budgets=[1.0])


def _arm(selection, target: str, name: str) -> tuple[str, ...]:
    (label,) = {r["label"] for r in selection.roles if r["target_task"] == target and r["arm"] == name}
    return tuple(next(m["tasks"] for m in selection.mixtures if m["label"] == label))


@pytest.mark.parametrize("targets", [[T], [T, U]])
def test_the_double_centred_pgf_reads_every_target_column(targets) -> None:
    counts = planted_counts()
    expected = by_hand(counts / 4)
    selection = _select(predictions(counts), targets)
    assert set(selection.halves) == set(TASK_NAMES)                       # every task halved, not only the targets
    for target in targets:
        j = TASK_NAMES.index(target)
        pool = [s for s in TASK_NAMES if s != target]
        toward = selection.pgf_toward[target]
        assert {s: v["pgf"] for s, v in toward.items()} == pytest.approx(
            {s: counts[TASK_NAMES.index(s), j] / 4 for s in pool})
        assert {s: v["pgf_centred"] for s, v in toward.items()} == pytest.approx(
            {s: expected[TASK_NAMES.index(s), j] for s in pool}, abs=1e-12)
        ranked = sorted(pool, key=lambda s: (-expected[TASK_NAMES.index(s), j], s))
        gap = expected[TASK_NAMES.index(ranked[2]), j] - expected[TASK_NAMES.index(ranked[3]), j]
        assert gap > 1e-6 and ranked[:3] != sorted(pool)[:3]              # a ranking, not the alphabet
        assert set(_arm(selection, target, "pgf_centred")) == set(ranked[:3])
        raw_top = sorted(pool, key=lambda s: (-counts[TASK_NAMES.index(s), j], s))[:3]
        assert set(_arm(selection, target, "pgf_top")) == set(raw_top) != set(ranked[:3])


def test_the_centred_ranking_of_a_target_does_not_depend_on_the_other_targets_chosen() -> None:
    frame = predictions(planted_counts())
    alone, pair = _select(frame, [T]), _select(frame, [T, U])
    assert alone.pgf_toward[T] == pair.pgf_toward[T]
    assert _arm(alone, T, "pgf_centred") == _arm(pair, T, "pgf_centred")


def test_a_target_the_base_model_was_not_evaluated_on_is_refused() -> None:
    frame = predictions(planted_counts()).filter(pl.col("target_task") != U)
    with pytest.raises(ValueError, match=f"targets: {U} has no base predictions for model 'm'"):
        _select(frame, [T, U])
