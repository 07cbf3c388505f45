"""The published claims (the paper's sections on cliques, personas and findings) on the released PGF tables,
with the simplest clique rule:
edge {i, j} when the seed-mean PGF is > 0 (< 0) both ways, then maximum cliques; diagonal excluded."""
from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import PAPER_MODELS
from transfer.analysis.cliques import model_cliques
from transfer.analysis.personas import assigned_personas, persona_tests
from transfer.analysis.transferability import averages, transfer_scores


def _largest(pgf, size: str, sign: str):
    return model_cliques(pgf, PAPER_MODELS[size])[sign][0]


def test_released_tables_have_four_runs_of_13_by_13(paper_pgf):
    counts = paper_pgf.group_by("model").agg(pl.len(), pl.col("seed").n_unique())
    assert sorted(counts["len"].to_list()) == [676, 676, 676] and set(counts["seed"].to_list()) == {4}


def test_32b_positive_clique_of_nine_and_negative_clique_of_four(paper_pgf):
    positive, negative = _largest(paper_pgf, "32B", "positive"), _largest(paper_pgf, "32B", "negative")
    assert len(positive.tasks) == 9 and positive.p_value < 1e-6
    assert len(negative.tasks) == 4 and negative.p_value < 1e-6
    assert sorted(negative.tasks) == ["Forensic_Detection", "Multi-view_Reasoning", "Object_Localization",
                                      "Semantic_Correspondence"]


@pytest.mark.parametrize("size", ["3B", "7B"])
def test_smaller_models_have_positive_cliques_of_three_or_four(paper_pgf, size):
    assert 3 <= len(_largest(paper_pgf, size, "positive").tasks) <= 4


def test_average_positive_transferability_grows_with_size(paper_pgf):
    per_model = averages(transfer_scores(paper_pgf))
    value = dict(zip(per_model["model"].to_list(), per_model["delta_pos"].to_list()))
    small, mid, large = (value[PAPER_MODELS[s]] for s in ("3B", "7B", "32B"))
    assert small <= mid < large
    assert large > 2 * mid                        # "a large jump at 32B"


def test_semantic_correspondence_is_a_donor_at_every_scale(paper_pgf):
    for model in PAPER_MODELS.values():
        assert "Semantic_Correspondence" in assigned_personas(persona_tests(paper_pgf, model))["donor"], model


def test_malleability_grows_with_size_and_negative_transfer_is_not_monotone(paper_pgf):
    per_model = averages(transfer_scores(paper_pgf))
    theta = dict(zip(per_model["model"].to_list(), per_model["theta_pos"].to_list()))
    delta_neg = dict(zip(per_model["model"].to_list(), per_model["delta_neg"].to_list()))
    small, mid, large = (theta[PAPER_MODELS[s]] for s in ("3B", "7B", "32B"))
    assert small <= mid < large
    neg = [delta_neg[PAPER_MODELS[s]] for s in ("3B", "7B", "32B")]
    assert not (neg[0] <= neg[1] <= neg[2] or neg[0] >= neg[1] >= neg[2])


@pytest.mark.parametrize("size", ["3B", "7B"])
def test_counting_in_task_finetuning_is_slightly_negative(paper_pgf, size):
    from transfer.analysis.tables import seed_mean_matrix

    tasks, mean = seed_mean_matrix(paper_pgf, PAPER_MODELS[size])
    k = tasks.index("Counting")
    assert -0.15 < mean[k, k] < 0
