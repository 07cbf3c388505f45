"""complete() / next_cells() / completed_pgf(): partial grids, hidden source rows, calibrated intervals."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.helpers import long_frame
from transfer.analysis.completion import METHODS, complete, completed_pgf, next_cells
from transfer.tasks import TASK_NAMES

TASKS = TASK_NAMES[:6]
KEY = ["model", "source_task", "target_task"]


def _hide(matrix: np.ndarray, rows: list[int]) -> np.ndarray:
    hidden = np.array(matrix, dtype=float)
    hidden[..., rows, :] = np.nan
    return hidden


def _additive(rows: np.ndarray, cols: np.ndarray, diag: np.ndarray) -> np.ndarray:
    matrix = rows[:, None] + cols[None, :]
    np.fill_diagonal(matrix, diag)
    return matrix


def _hidden_cells(done: pl.DataFrame, truth: dict[str, np.ndarray], tasks: list[str]) -> tuple[np.ndarray, ...]:
    """(prediction, truth, ci_low, ci_high) of the unobserved cells."""
    position = {t: i for i, t in enumerate(tasks)}
    cells = done.filter(~pl.col("observed"))
    true = np.array([truth[m][position[s], position[t]] for m, s, t in cells.select(KEY).iter_rows()])
    return cells["pgf"].to_numpy(), true, cells["ci_low"].to_numpy(), cells["ci_high"].to_numpy()


def test_additive_recovers_the_target_effects_exactly():
    rows, cols = np.array([0.3, -0.2, 0.1, -0.4, 0.05, 0.15]), np.array([0.2, -0.1, 0.4, 0.0, -0.3, 0.1])
    truth = _additive(rows, cols, np.linspace(0.2, 0.7, 6))
    done = complete(long_frame(_hide(truth, [4, 5]), TASKS), method="additive")
    for i in (4, 5):
        row = done.filter((pl.col("source_task") == TASKS[i]) & (pl.col("target_task") != TASKS[i]))
        error = row["pgf"].to_numpy() - np.delete(truth[i], i)
        # an unobserved source's own effect is unknowable from its model: the error is that effect, constant
        assert error == pytest.approx(np.full(5, rows[:4].mean() - rows[i]), abs=1e-9)


def test_cross_model_recovers_an_exactly_additive_sweep():
    # sources 4, 5 mirror 1, 0, so both models' observed rows hold the same effects: carry-over is exact
    rows = np.array([0.3, -0.2, 0.1, -0.4, -0.2, 0.3])
    cols = np.array([0.2, -0.1, 0.4, 0.0, -0.1, 0.2])
    diag = np.array([0.6, 0.2, 0.5, 0.1, 0.2, 0.6])
    truth = _additive(rows, cols, diag)
    observed = pl.concat([long_frame(_hide(truth, [4, 5]), TASKS, "fam-1B"),
                          long_frame(_hide(truth, [0, 1]), TASKS, "fam-7B")])
    done = complete(observed, method="cross_model")
    predicted, true, _, _ = _hidden_cells(done, {"fam-1B": truth, "fam-7B": truth}, TASKS)
    assert len(predicted) == 2 * 2 * 6
    assert predicted == pytest.approx(true, abs=1e-9)
    assert set(done.filter(~pl.col("observed"))["method"]) == {"cross_model"}


def test_observed_cells_are_the_seed_means_and_partial_seeds_widen_them():
    rng = np.random.default_rng(0)
    cube = rng.normal(0.1, 0.2, (3, 6, 6))
    cube[1:, 2] = np.nan                          # source 2 run in one seed of three
    cube[:, 5] = np.nan                           # source 5 not run
    observed = long_frame(cube, TASKS)
    done = complete(observed).sort(KEY)
    means = observed.group_by(KEY).agg(pl.col("pgf").mean(), pl.len().alias("n")).sort(KEY)
    run = done.filter(pl.col("observed"))
    assert run.select(KEY).equals(means.select(KEY))
    assert run["pgf"].to_numpy() == pytest.approx(means["pgf"].to_numpy(), abs=1e-15)
    assert run["n_seeds"].to_list() == means["n"].to_list()
    full = run.filter(pl.col("n_seeds") == 3)
    assert (full["ci_low"] == full["pgf"]).all() and (full["ci_high"] == full["pgf"]).all()
    partial = run.filter(pl.col("n_seeds") == 1)
    assert partial.height == 6 and ((partial["ci_low"] < partial["pgf"]) & (partial["pgf"] < partial["ci_high"])).all()
    assert set(run["method"]) == {"observed"} and run["calibration_n"].is_null().all()
    hidden = done.filter(~pl.col("observed"))
    assert set(hidden["source_task"]) == {TASKS[5]} and (hidden["ci_high"] > hidden["ci_low"]).all()


def test_interval_coverage_is_near_nominal_on_additive_plus_noise():
    rng = np.random.default_rng(1)
    tasks, inside, total = TASK_NAMES[:8], 0, 0
    for _ in range(60):
        truth = _additive(rng.normal(0, 0.1, 8), rng.normal(0, 0.2, 8), rng.normal(0.4, 0.2, 8))
        truth += rng.normal(0, 0.1, (8, 8))
        hidden = list(rng.choice(8, 4, replace=False))
        done = complete(long_frame(_hide(truth, hidden), tasks), method="additive", level=0.9)
        _, true, low, high = _hidden_cells(done, {"m": truth}, tasks)
        inside += int(((true >= low) & (true <= high)).sum())
        total += len(true)
    assert 0.85 <= inside / total <= 0.95


def _shared_sweep(rng: np.random.Generator, hidden: dict[str, list[int]], seeds: int = 1) -> tuple[pl.DataFrame, dict]:
    """Models whose source effects and in-task gains are one pattern, scaled; own target effects, small noise."""
    rows, diag = rng.normal(0, 0.3, 13), rng.normal(0.3, 0.3, 13)
    truths, frames = {}, []
    for k, (model, rows_hidden) in enumerate(hidden.items()):
        truth = _additive((k + 2) / 2 * rows, rng.normal(0, 0.2, 13), diag + 0.1 * k) + rng.normal(0, 0.03, (13, 13))
        cube = truth + rng.normal(0, 0.01, (seeds, 13, 13))
        truths[model] = cube.mean(axis=0)
        frames.append(long_frame(_hide(cube, rows_hidden), TASK_NAMES, model))
    return pl.concat(frames), truths


def test_cross_model_beats_column_means_when_models_share_source_effects():
    rng = np.random.default_rng(2)
    errors = {"column": [], "cross_model": []}
    for _ in range(4):
        hidden = {m: list(rng.choice(13, 6, replace=False)) for m in ("fam-1B", "fam-3B", "fam-7B")}
        observed, truths = _shared_sweep(rng, hidden)
        for method in errors:
            predicted, true, _, _ = _hidden_cells(complete(observed, method=method), truths, TASK_NAMES)
            errors[method].append(predicted - true)
    rmse = {m: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for m, e in errors.items()}
    assert rmse["cross_model"] < 0.8 * rmse["column"]


def test_every_method_returns_one_row_per_cell_with_the_documented_columns():
    rng = np.random.default_rng(3)
    observed = long_frame(_hide(rng.normal(0, 0.2, (2, 6, 6)), [1, 4]), TASKS)
    for method in METHODS:
        done = complete(observed, method=method, level=0.8)
        assert done.columns == ["model", "source_task", "target_task", "pgf", "observed", "n_seeds", "method",
                                "donors", "ci_low", "ci_high", "calibration_n", "level"]
        assert done.height == 36 and done.select(KEY).n_unique() == 36 and (done["level"] == 0.8).all()
        assert set(done.filter(~pl.col("observed"))["method"]) == {"column" if method == "column" else "additive"}


def test_completed_pgf_seed_means_equal_the_completion():
    rng = np.random.default_rng(4)
    observed = long_frame(_hide(rng.normal(0, 0.2, (2, 6, 6)), [0, 3]), TASKS)
    done = complete(observed)
    filled = completed_pgf(observed, done)
    means = filled.group_by(KEY).agg(pl.col("pgf").mean()).sort(KEY)
    assert means["pgf"].to_numpy() == pytest.approx(done.sort(KEY)["pgf"].to_numpy(), abs=1e-12)
    assert set(filled.filter(pl.col("predicted"))["source_task"]) == {TASKS[0], TASKS[3]}
    assert set(filled["seed"]) == {"0", "1"}


def test_next_cells_runs_first_the_source_no_model_has():
    rng = np.random.default_rng(5)
    observed, _ = _shared_sweep(rng, {"fam-1B": [0, 1, 2, 3], "fam-7B": [0, 4, 5, 6]}, seeds=2)
    observed = observed.filter(~((pl.col("source_task") == TASK_NAMES[7]) & (pl.col("seed") == "1")))
    order = next_cells(observed, method="cross_model")
    # unobserved everywhere: its run also gives the other model a donor
    assert set(order["source_task"][:2]) == {TASK_NAMES[0]} and set(order["model"][:2]) == {"fam-1B", "fam-7B"}
    assert order["rank"].to_list() == list(range(1, order.height + 1))
    assert order.height == 2 * 4 + 2              # the unobserved rows and the half-seeded ones
    single = order.filter(pl.col("source_task") == TASK_NAMES[7])
    assert set(single["seed"]) == {"1"}
    assert (single["gain"] < order.filter(pl.col("source_task") != TASK_NAMES[7])["gain"].min()).all()


@pytest.mark.parametrize("kwargs, bad", [({"method": "magic"}, "'magic'"), ({"models": ["m", "ghost"]}, "'ghost'"),
                                         ({"level": 1.5}, "1.5")])
def test_bad_arguments_give_a_one_line_error_naming_the_value(kwargs, bad):
    observed = long_frame(_hide(np.zeros((6, 6)), [5]), TASKS)
    with pytest.raises(ValueError) as error:
        complete(observed, **kwargs)
    assert bad in str(error.value) and "\n" not in str(error.value)


def test_a_run_lacking_targets_is_refused():
    observed = long_frame(np.zeros((6, 6)), TASKS).filter(
        ~((pl.col("source_task") == TASKS[2]) & (pl.col("target_task") == TASKS[4])))
    with pytest.raises(ValueError, match=f"source='{TASKS[2]}'.*lacks targets \\['{TASKS[4]}'\\]"):
        complete(observed)
