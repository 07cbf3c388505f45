"""probes/calibration.py: rescoring stored log-likelihoods removes each run's own letter prior, and the counts it
rebuilds are the cells' scores."""
from __future__ import annotations

import random

import polars as pl

from probes.calibration import rescore, scores_of
from transfer.tasks import TASKS


def _run(seed: str, bias_to: int, n: int = 60) -> pl.DataFrame:
    """One cell's predictions on Counting (4 options): a weak signal on the gold option and a strong prior on one
    letter, which raw scoring follows everywhere."""
    rng = random.Random(int(seed))
    gold = [i % 4 for i in range(n)]
    loglik = [[(1.0 if j == g else 0.0) + rng.gauss(0, 0.2) + (3.0 if j == bias_to else 0.0) for j in range(4)]
              for g in gold]
    return pl.DataFrame({"model": "m", "source_task": "none", "seed": seed, "target_task": "Counting",
                         "idx": [f"val_Counting_{i:03d}" for i in range(n)], "gold": gold, "loglik": loglik,
                         "correct": False})


def test_raw_scoring_follows_the_prior_and_batch_calibration_removes_each_runs_own() -> None:
    predictions = pl.concat([_run("0", bias_to=1), _run("1", bias_to=3)])
    raw = scores_of(rescore(predictions, "none")).sort("seed")
    assert raw["correct"].to_list() == [15, 15]                # each run answers its favourite letter only
    calibrated = scores_of(rescore(predictions, "batch")).sort("seed")
    assert calibrated["correct"].min() >= 55                   # per run: pooled, the two priors would not cancel
    assert calibrated["n"].to_list() == [60, 60]
    assert calibrated["accuracy"].to_list() == [c / 60 for c in calibrated["correct"]]
    assert calibrated["chance"].to_list() == [TASKS["Counting"].chance] * 2
