"""transfer.analysis.validation: the per-model summary.json (binomial, planted permutation tests, seed agreement)."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from transfer.analysis.validation import binomial_sf, is_synthetic, validation_summary
from transfer.atomic import write_parquet
from transfer.embedded.planted import planted_table
from transfer.records import PREDICTIONS, SCORES, cell_dir
from transfer.tasks import TASK_NAMES, TASKS

GROUPS = ("planted_positive", "planted_negative", "unplanted")
PLANTED_KEYS = ({f"{group}{tag}_mean" for group in GROUPS for tag in ("", "_dacc")}
                | {f"{group}{tag}{kind}" for group in GROUPS[:2] for tag in ("", "_dacc")
                   for kind in ("_p", "_excess", "_p_pooled")}
                | {f"{group}_cells" for group in GROUPS})
NUMBER_KEYS = {"n_seeds", "off_diagonal_cells", "base_above_chance", "base_tasks", "diag_significant",
               "significant_positive_cells", "significant_negative_cells", "seed_spearman"}
SIGNIFICANT_DIAGONAL = TASK_NAMES[:5]


def _cell_values(rng, effect: float) -> dict[tuple[str, str], float]:
    """Seed-mean PGF per cell: planted positive +effect, negative −effect, the rest noise around 0."""
    shift = {"positive": effect, "negative": -effect, "none": 0.0}
    values = {(s, s): (0.6 if s in SIGNIFICANT_DIAGONAL else 0.02) for s in TASK_NAMES}
    for source, target, rel in planted_table().select("source_task", "target_task", "relation").iter_rows():
        values[source, target] = shift[rel] + rng.normal(0, 0.05)
    return values


def _frames(values: dict[tuple[str, str], float], seeds: int = 4, half: float = 0.1):
    """(intervals, per-seed pgf) for model "m": intervals value ± half; seed s adds a cell-independent offset."""
    cells = list(values)
    mean = np.array([values[c] for c in cells])
    intervals = pl.DataFrame({"model": "m", "source_task": [s for s, _ in cells], "target_task": [t for _, t in cells],
                              "pgf_mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                              "n_seeds": seeds, "dacc_mean": mean / 2, "dacc_low": mean / 2 - half,
                              "dacc_high": mean / 2 + half})
    pgf = pl.concat([pl.DataFrame({"model": "m", "source_task": [s for s, _ in cells],
                                   "target_task": [t for _, t in cells], "seed": seed, "pgf": mean + 0.01 * seed})
                     for seed in range(seeds)])
    return intervals, pgf


def _accuracy(correct: dict[str, int], n: int = 10, base_seeds: int = 1) -> pl.DataFrame:
    """Base score rows (source "none") with `correct` of `n` per target, repeated for each base seed."""
    return pl.DataFrame([{"model": "m", "source_task": "none", "target_task": t, "seed": s, "n": n, "correct": k,
                          "accuracy": k / n, "chance": TASKS[t].chance}
                         for s in range(base_seeds) for t, k in correct.items()])


def _mean_by_relation(values: dict[tuple[str, str], float], relation: str) -> float:
    pairs = planted_table().filter(pl.col("relation") == relation).select("source_task", "target_task").rows()
    return float(np.mean([values[p] for p in pairs]))


@pytest.mark.parametrize("k, n, p, expected", [
    (8, 10, 0.5, 56 / 1024),                 # C(10,8) + C(10,9) + C(10,10) = 45 + 10 + 1
    (3, 3, 0.25, 1 / 64),
    (0, 7, 0.5, 1.0),
    (11, 10, 0.5, 0.0),
    (1, 4, 1 / 3, 1 - (2 / 3) ** 4),
])
def test_binomial_sf_hand_values(k, n, p, expected):
    assert binomial_sf(k, n, p) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_binomial_sf_matches_exact_sums_for_large_n():
    exact = sum(math.comb(400, i) for i in range(230, 401)) / 2**400   # integer arithmetic, then one division
    assert binomial_sf(230, 400, 0.5) == pytest.approx(exact, rel=1e-9)
    assert 0 < binomial_sf(900, 1500, 0.5) < 1e-10                      # no overflow where comb exceeds floats


def test_summary_detects_planted_structure_and_counts_significant_cells():
    rng = np.random.default_rng(0)
    values = _cell_values(rng, effect=0.5)
    intervals, pgf = _frames(values)
    accuracy = _accuracy({"Jigsaw": 8, "Counting": 9, "Art_Style": 10})
    out = validation_summary(intervals, pgf, accuracy, planted_table(), n_perm=2000)["m"]
    assert out["planted_positive_p"] < 0.01 and out["planted_negative_p"] < 0.01
    assert out["planted_positive_dacc_p"] < 0.01 and out["planted_negative_dacc_p"] < 0.01
    assert out["planted_positive_p_pooled"] < 0.01 and out["planted_negative_p_pooled"] < 0.01
    assert out["planted_positive_excess"] == pytest.approx(0.5, abs=0.1)
    assert out["planted_negative_excess"] == pytest.approx(-0.5, abs=0.1)
    for key, relation in (("planted_positive", "positive"), ("planted_negative", "negative"), ("unplanted", "none")):
        assert out[f"{key}_mean"] == pytest.approx(_mean_by_relation(values, relation))
        assert out[f"{key}_dacc_mean"] == pytest.approx(_mean_by_relation(values, relation) / 2)
    counts = planted_table()["relation"].value_counts()
    assert out["planted_positive_cells"] == counts.filter(pl.col("relation") == "positive")["count"].item()
    assert out["unplanted_cells"] + out["planted_negative_cells"] + out["planted_positive_cells"] == 13 * 12
    # ±0.1 intervals: the planted cells (±0.5) exclude 0, the unplanted (noise sd 0.05) all but never do
    unplanted = [v for (s, t), v in values.items() if s != t and abs(v) < 0.3]
    assert out["significant_positive_cells"] == out["planted_positive_cells"] + sum(v > 0.1 for v in unplanted)
    assert out["significant_negative_cells"] == out["planted_negative_cells"] + sum(v < -0.1 for v in unplanted)
    assert out["diag_significant"] == len(SIGNIFICANT_DIAGONAL)
    assert sorted(out["diag_significant_tasks"]) == sorted(SIGNIFICANT_DIAGONAL)
    assert out["off_diagonal_cells"] == 13 * 12 and out["n_seeds"] == 4
    # 10/10 at chance 1/2 and 9/10 at 1/4 are above chance; 8/10 at 1/2 is not (p = 56/1024 ≈ 0.055)
    assert out["base_above_chance"] == 2 and sorted(out["base_above_chance_tasks"]) == ["Art_Style", "Counting"]
    assert out["base_accuracy"]["Jigsaw"] == {"accuracy": 0.8, "chance": 0.5, "p": pytest.approx(56 / 1024)}
    assert out["seed_spearman"] == pytest.approx(1.0)


def test_summary_without_structure_is_not_significant():
    rng = np.random.default_rng(1)
    intervals, pgf = _frames(_cell_values(rng, effect=0.0))
    out = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 5}), planted_table(), n_perm=2000)["m"]
    assert out["planted_positive_p"] > 0.05 and out["planted_negative_p"] > 0.05
    assert out["base_above_chance"] == 0 and out["base_accuracy"]["Jigsaw"]["p"] > 0.5


def test_summary_keys_are_numbers_and_json_ready():
    intervals, pgf = _frames(_cell_values(np.random.default_rng(2), effect=0.3))
    out = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 8}), planted_table(), n_perm=200)
    entry = json.loads(json.dumps(out, allow_nan=False))["m"]
    for key in NUMBER_KEYS | PLANTED_KEYS:
        assert isinstance(entry[key], (int, float)) and not isinstance(entry[key], bool), key
    assert all(isinstance(entry["base_accuracy"]["Jigsaw"][k], float) for k in ("accuracy", "chance", "p"))


def test_summary_without_planted_table_leaves_the_planted_keys_out():
    intervals, pgf = _frames(_cell_values(np.random.default_rng(3), effect=0.5))
    out = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 8}), None)["m"]
    assert not PLANTED_KEYS & set(out) and NUMBER_KEYS <= set(out)
    assert out["notes"]


def test_cells_missing_from_intervals_are_not_counted():
    intervals, pgf = _frames(_cell_values(np.random.default_rng(3), effect=0.5))
    full = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 8}), planted_table(), n_perm=200)["m"]
    pair = (pl.col("source_task") == "Art_Style") & (pl.col("target_task") == "Visual_Similarity")   # planted +
    dropped = intervals.filter(~pair)
    part = validation_summary(dropped, pgf, _accuracy({"Jigsaw": 8}), planted_table(), n_perm=200)["m"]
    assert part["planted_positive_cells"] == full["planted_positive_cells"] - 1
    assert part["significant_positive_cells"] == full["significant_positive_cells"] - 1
    assert part["off_diagonal_cells"] == full["off_diagonal_cells"] - 1


def test_repeated_base_seeds_are_one_sample_not_pooled():
    intervals, pgf = _frames(_cell_values(np.random.default_rng(4), effect=0.0))
    one = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 8}), None)["m"]["base_accuracy"]
    four = validation_summary(intervals, pgf, _accuracy({"Jigsaw": 8}, base_seeds=4), None)["m"]["base_accuracy"]
    assert four == one


def test_seed_spearman_halves_and_degenerate_cases():
    values = _cell_values(np.random.default_rng(5), effect=0.5)
    intervals, pgf = _frames(values)
    flipped = pgf.with_columns(pl.when(pl.col("seed") >= 2).then(-pl.col("pgf")).otherwise(pl.col("pgf")))
    accuracy = _accuracy({"Jigsaw": 8})
    assert validation_summary(intervals, flipped, accuracy, None)["m"]["seed_spearman"] == pytest.approx(-1.0)
    noisy = pgf.with_columns(pl.col("pgf") + np.random.default_rng(6).normal(0, 1.0, pgf.height))
    rho = validation_summary(intervals, noisy, accuracy, None)["m"]["seed_spearman"]
    assert -0.9 < rho < 0.9                                      # independent noise per seed: far from ±1
    one_seed = pgf.filter(pl.col("seed") == 0)
    assert validation_summary(intervals, one_seed, accuracy, None)["m"]["seed_spearman"] is None


def test_is_synthetic_needs_every_row_synthetic():
    rows = pl.DataFrame({"model": ["m", "m"]})
    assert not is_synthetic(rows)
    assert is_synthetic(rows.with_columns(data_source=pl.lit("synthetic")))
    assert not is_synthetic(rows.with_columns(data_source=pl.Series(["synthetic", "blink"])))
    assert not is_synthetic(rows.with_columns(data_source=pl.Series(["synthetic", None])))


SWEEP_TASKS = ["Art_Style", "Visual_Similarity", "Jigsaw", "Counting"]   # colour_match (+ AS↔VS, − with JG), count


def _fake_sweep(sweep, data_source: str, n: int = 40, seeds: int = 2) -> None:
    """Scores + predictions of one model: base + four sources on four targets; AS and VS help each other."""
    rng = np.random.default_rng(7)
    base = {t: rng.random(n) < 0.5 for t in SWEEP_TASKS}
    for source in ["none", *SWEEP_TASKS]:
        for seed in range(seeds):
            gain = {t: 0.6 if source == t or {source, t} == {"Art_Style", "Visual_Similarity"} else 0.02
                    for t in SWEEP_TASKS}
            correct = {t: base[t] if source == "none" else base[t] | (rng.random(n) < gain[t]) for t in SWEEP_TASKS}
            cell = cell_dir(sweep, "tiny", source, seed)
            write_parquet(pl.concat([pl.DataFrame({"model": "tiny", "source_task": source, "seed": seed,
                                                   "target_task": t, "idx": np.arange(n), "correct": correct[t]})
                                     for t in SWEEP_TASKS]), cell / PREDICTIONS)
            write_parquet(pl.DataFrame([{"sweep": sweep.name, "model": "tiny", "source_task": source, "seed": seed,
                                         "target_task": t, "n": n, "correct": int(correct[t].sum()),
                                         "accuracy": float(correct[t].mean()), "chance": TASKS[t].chance,
                                         "config_hash": "h", "data_source": data_source} for t in SWEEP_TASKS]),
                          cell / SCORES)


@pytest.mark.parametrize("data_source", ["synthetic", "blink"])
def test_reduce_sweep_writes_summary_json(tmp_path, data_source):
    from transfer.reduce import reduce_sweep

    sweep = tmp_path / "sweep"
    _fake_sweep(sweep, data_source)
    reduce_sweep(sweep, n_boot=200)
    summary = json.loads((sweep / "reduce" / "summary.json").read_text())
    entry = summary["tiny"]
    assert entry["n_seeds"] == 2 and entry["off_diagonal_cells"] == 12 and entry["base_tasks"] == 4
    assert entry["diag_significant"] == 4
    assert (sweep / "reduce" / "planted.parquet").exists() == (data_source == "synthetic")
    if data_source == "synthetic":
        assert (entry["planted_positive_cells"], entry["planted_negative_cells"], entry["unplanted_cells"]) == (2, 4, 6)
        assert entry["planted_positive_mean"] > 0.3 > entry["unplanted_mean"]
    else:
        assert "planted_positive_p" not in entry
