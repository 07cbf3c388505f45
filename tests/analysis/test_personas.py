"""Persona rule: top quarter of the score AND max-T permutation p < alpha (transfer.analysis.personas)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.helpers import long_frame
from transfer.analysis.personas import assigned_personas, persona_tests
from transfer.tasks import TASK_NAMES

T = TASK_NAMES[:8]


def _planted(rng) -> np.ndarray:
    cube = rng.normal(0, 0.02, (4, 8, 8))
    cube[:, 0, :] += 0.4          # donor: helps every target
    cube[:, 5, :] -= 0.4          # pirate: hurts every target
    cube[:, :, 3] += 0.4          # sponge: helped by every source
    cube[:, :, 6] -= 0.4          # sieve: hurt by every source
    return cube


def test_planted_personas_are_found_and_nothing_else():
    tests = persona_tests(long_frame(_planted(np.random.default_rng(0))), "m", n_perm=500)
    assert assigned_personas(tests) == {"donor": [T[0]], "pirate": [T[5]], "sponge": [T[3]], "sieve": [T[6]]}
    donor = tests.filter((pl.col("persona") == "donor") & (pl.col("task") == T[0])).row(0, named=True)
    assert donor["rank"] == 1 and donor["top_quarter"] and donor["p_value"] < 0.01
    assert donor["p_unadjusted"] <= donor["p_value"]
    # the second of the top quarter (⌈8/4⌉ = 2) is a top scorer by chance only: not significant, not assigned
    second = tests.filter((pl.col("persona") == "donor") & (pl.col("rank") == 2)).row(0, named=True)
    assert second["top_quarter"] and not second["assigned"] and second["p_value"] > 0.05


def test_structureless_data_rarely_yields_a_persona():
    rng = np.random.default_rng(1)
    assigned = []
    for k in range(25):
        tests = persona_tests(long_frame(rng.normal(0, 0.1, (4, 8, 8))), "m", n_perm=300, seed=k)
        assigned += [bool(tests.filter(pl.col("persona") == p)["assigned"].any())
                     for p in ("donor", "pirate", "sponge", "sieve")]
    assert np.mean(assigned) <= 0.12                    # max-T keeps each persona's false-positive rate ≤ alpha


def test_unadjusted_selection_would_be_anticonservative():
    # The reason for max-T: on structureless data the top scorer's own (unadjusted) p is often < 0.05.
    rng = np.random.default_rng(2)
    low = [persona_tests(long_frame(rng.normal(0, 0.1, (4, 8, 8))), "m", n_perm=300, seed=k)
           .filter((pl.col("persona") == "donor") & (pl.col("rank") == 1))["p_unadjusted"].item() < 0.05
           for k in range(25)]
    assert np.mean(low) > 0.2


def test_persona_argument_errors():
    frame = long_frame(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        persona_tests(frame, "m", alpha=1.5)
    with pytest.raises(ValueError, match="n_perm"):
        persona_tests(frame, "m", n_perm=0)
