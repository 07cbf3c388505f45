"""The selection figures draw intervals whose bound passes the estimate by float rounding (an all-correct arm)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from transfer.selection.report import plot_summary, plot_target, whiskers


def test_whiskers_are_never_negative() -> None:
    low, high = whiskers(1.0, 1.0000000000000007, 1.000000000000001)
    assert low == [0.0] and high[0] == pytest.approx(1e-15, abs=1e-15)
    assert whiskers(0.5, 0.4, 0.7) == [[pytest.approx(0.1)], [pytest.approx(0.2)]]


def test_figures_of_an_all_correct_arm_are_written(tmp_path: Path) -> None:
    accuracy = pl.DataFrame({"target_task": ["Art_Style"] * 3, "arm": ["base", "direct", "random"],
                             "accuracy": [0.88, 1.0, 0.81], "ci_low": [0.82, 1.0000000000000007, 0.72],
                             "ci_high": [0.93, 1.000000000000001, 0.89]})
    draws = pl.DataFrame({"target_task": ["Art_Style"] * 2, "accuracy": [0.78, 0.84]})
    versus = pl.DataFrame({"target_task": ["Art_Style"], "arm": ["pgf_top"], "difference": [0.0],
                           "ci_low": [1e-17], "ci_high": [0.1]})
    for path in (plot_target(accuracy, draws, "Art_Style", tmp_path / "t.png"),
                 plot_summary(versus, tmp_path / "s.png")):
        assert path.stat().st_size > 1000
