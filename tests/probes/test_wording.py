"""probes/wording.py: its rewordings match the generators' questions, use the pretraining's own wording, and keep
the gold on the option the primitive picks (the lower mark, measured on the pixels)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from probes import wording
from tests.helpers import mark_height_pick
from transfer.data.blink import read_split
from transfer.embedded.suite import generate_suite
from transfer.embedded.suite.generic import generic_lower_mark


def _base_questions(n: int = 40) -> set[str]:
    rng = random.Random(3)
    return {generic_lower_mark(rng, slot % 2, 64)["question"] for slot in range(n)}


@pytest.mark.parametrize("task", sorted(wording.REWORDINGS))
def test_reworded_questions_ask_the_base_question_with_the_lower_mark_as_gold(task: str, tmp_path: Path) -> None:
    generate_suite(tmp_path, seed=2, train_size=1, val_sizes={task: 40}, tasks=[task])
    own = read_split(tmp_path, task, "val")
    base = _base_questions()
    for question in own:
        new = wording.reworded(question, wording.REWORDINGS[task])
        asked = new.prompt.split("\n")[0]
        assert asked in base, f"{asked!r} is not a pretraining question"
        assert new.choices == question.choices and new.images == question.images
        row = {"images": question.images}
        assert new.answer == mark_height_pick(row), f"{question.idx}: gold {new.answer} is not the lower mark"


def test_a_prompt_the_rewording_does_not_match_is_refused(tmp_path: Path) -> None:
    generate_suite(tmp_path, seed=2, train_size=1, val_sizes={"Counting": 2}, tasks=["Counting"])
    question = read_split(tmp_path, "Counting", "val")[0]
    with pytest.raises(ValueError, match="does not match"):
        wording.reworded(question, wording.REWORDINGS["Relative_Depth"])
