"""Mixture cells: the budget is shared by the weights, drawn reproducibly, and the spec checks the arms file."""
from __future__ import annotations

import json

import pytest

from tests.helpers import compose_spec
from transfer.cell import training_tasks
from transfer.data.mixture import mixture_examples
from transfer.spec import MixtureSpec, SpecError


def _pools():
    return {t: [{"idx": f"{t}-{i}"} for i in range(n)] for t, n in (("Counting", 50), ("Jigsaw", 50), ("Art_Style", 3))}


def test_the_budget_is_shared_by_the_weights_and_drawn_reproducibly():
    mixture = MixtureSpec("m", ("Counting", "Jigsaw"), (2.0, 1.0), 10, 1.0)
    examples = mixture_examples(_pools(), mixture, seed=0)
    assert len(examples) == 10 and sum(e["idx"].startswith("Counting") for e in examples) == 7   # 6.67 -> 7
    assert mixture_examples(_pools(), mixture, seed=0) == examples
    assert mixture_examples(_pools(), mixture, seed=1) != examples
    assert len({e["idx"] for e in examples}) == 10   # without replacement


def test_a_pool_smaller_than_its_share_gives_all_it_has():
    mixture = MixtureSpec("m", ("Art_Style", "Jigsaw"), (0.5, 0.5), 20, 1.0)
    examples = mixture_examples(_pools(), mixture, seed=0)
    assert sum(e["idx"].startswith("Art_Style") for e in examples) == 3 and len(examples) == 13


def test_a_mixture_cell_is_named_by_its_label_and_trains_on_its_tasks(tmp_path):
    arms = tmp_path / "arms.json"
    arms.write_text(json.dumps([{"label": "mix-a", "tasks": ["Counting", "Jigsaw"], "weights": [0.5, 0.5],
                                 "examples": 8, "steps_scale": 0.5},
                                {"label": "mix-base", "tasks": [], "weights": [], "examples": 8}]))
    spec = compose_spec(f"mix.arms={arms}", "mix.arm=0")
    assert spec.source == "mix-a" and training_tasks(spec) == ["Counting", "Jigsaw"] and spec.finetunes
    base = compose_spec(f"mix.arms={arms}", "mix.arm=1")
    assert base.source == "mix-base" and not base.finetunes and training_tasks(base) == []
    assert spec.config_hash() != base.config_hash()


@pytest.mark.parametrize("entry, message", [
    ({"label": "a/b", "tasks": [], "weights": [], "examples": 1}, "not one folder name"),
    ({"label": "x", "tasks": ["Countng"], "weights": [1], "examples": 1}, "expected distinct tasks"),
    ({"label": "x", "tasks": ["Counting"], "weights": [0], "examples": 1}, "not all 0"),
    ({"label": "x", "tasks": ["Counting"], "weights": [1], "examples": 0}, "examples 0"),
])
def test_a_bad_arm_is_refused_in_one_line(entry, message, tmp_path):
    arms = tmp_path / "arms.json"
    arms.write_text(json.dumps([entry]))
    with pytest.raises(SpecError, match=message):
        compose_spec(f"mix.arms={arms}", "mix.arm=0")
    with pytest.raises(SpecError, match="expected an index below the 1 arms"):
        compose_spec(f"mix.arms={arms}", "mix.arm=3")


def test_a_mixture_cell_has_no_source_task(tmp_path):
    arms = tmp_path / "arms.json"
    arms.write_text(json.dumps([{"label": "x", "tasks": ["Counting"], "weights": [1], "examples": 4}]))
    with pytest.raises(SpecError, match="expected none with mix.arms"):
        compose_spec("source_task=Counting", f"mix.arms={arms}", "mix.arm=0")
    with pytest.raises(SpecError, match="expected both set"):
        compose_spec(f"mix.arms={arms}")
