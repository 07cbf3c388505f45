"""The synthetic BLINK-format suite and the base data, read back through the real BLINK loader."""
from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import compose_spec
from transfer.data.blink import list_configs, read_split
from transfer.embedded.suite import GENERATORS, code_fingerprint, generate_rows, generate_suite, suite_root
from transfer.embedded.suite.generic import GENERIC_KINDS, generate_generic
from transfer.spec import SpecError
from transfer.tasks import ALL_BLINK, TASK_NAMES, TASKS

TRAIN, VAL = 12, 8


def yaml_value(text: str):
    """The value Hydra gives an override written as `text`."""
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    return generate_suite(root, seed=3, train_size=TRAIN, val_sizes={t: VAL for t in TASK_NAMES})


def test_generators_cover_exactly_the_paper_tasks() -> None:
    assert list(GENERATORS) == TASK_NAMES


def test_suite_layout_and_manifest(suite: Path) -> None:
    assert list_configs(suite) == sorted(TASK_NAMES)
    manifest = json.loads((suite / "suite.json").read_text())
    assert manifest == {"seed": 3, "train_size": TRAIN, "val_sizes": {t: VAL for t in TASK_NAMES},
                        "image_size": 64, "tasks": TASK_NAMES, "code_sha256": code_fingerprint()}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_task_matches_registry_and_reads_back(suite: Path, task: str) -> None:
    spec = TASKS[task]
    for split, size in (("train", TRAIN), ("val", VAL)):
        questions = read_split(suite, task, split)
        assert [q.idx for q in questions] == [f"{split}_{task}_{n}" for n in range(1, size + 1)]
        for q in questions:
            assert len(q.choices) == spec.n_choices and len(set(q.choices)) == spec.n_choices
            assert len(q.images) == spec.n_images
            assert 0 <= q.answer < spec.n_choices
            assert all(image.size == (64, 64) and image.mode == "RGB" for image in q.images)
            assert q.prompt.endswith(f"({'ABCD'[spec.n_choices - 1]}) {q.choices[-1]}")
            assert q.meta["sub_task"] == task


@pytest.mark.parametrize("size", [48, 96])
def test_every_task_draws_at_other_image_sizes(size: int) -> None:
    for task in TASK_NAMES:
        for row in generate_rows(task, 4, seed=0, split="val", image_size=size):
            assert [image.size for image in row["images"]] == [(size, size)] * TASKS[task].n_images


def test_same_seed_same_bytes_other_seed_other_data(suite: Path, tmp_path: Path) -> None:
    sizes = {t: VAL for t in TASK_NAMES}
    again = generate_suite(tmp_path / "again", seed=3, train_size=TRAIN, val_sizes=sizes)
    other = generate_suite(tmp_path / "other", seed=4, train_size=TRAIN, val_sizes=sizes)
    for task in TASK_NAMES:
        for split in ("train", "val"):
            name = f"{task}/{split}-00000-of-00001.parquet"
            assert (again / name).read_bytes() == (suite / name).read_bytes(), name
            first = read_split(suite, task, split)[0].images[0]
            assert not np.array_equal(np.asarray(first), np.asarray(read_split(other, task, split)[0].images[0]))


@pytest.mark.parametrize("task", TASK_NAMES)
def test_gold_letters_are_balanced_and_text_alone_does_not_tell_the_answer(task: str) -> None:
    rows = generate_rows(task, 240, seed=1, split="train")
    k = TASKS[task].n_choices
    letters = Counter(row["answer"] for row in rows)
    assert sorted(letters) == list(range(k)) and max(letters.values()) - min(letters.values()) <= 1
    # a text-only guesser (majority answer per question + options text, fitted on one half) stays near chance
    seen: dict[tuple, Counter] = {}
    for row in rows[:120]:
        seen.setdefault((row["question"], *row["choices"]), Counter())[row["answer"]] += 1
    overall = Counter(row["answer"] for row in rows[:120]).most_common(1)[0][0]
    hits = [(seen[key].most_common(1)[0][0] if (key := (row["question"], *row["choices"])) in seen else overall)
            == row["answer"] for row in rows[120:]]
    assert np.mean(hits) < 1 / k + 0.15


def test_option_lists_come_in_a_fixed_order() -> None:
    """The gold letter depends on the images only: every task and base kind lists its options in one order."""
    for task in TASK_NAMES:
        choices = {tuple(row["choices"]) for row in generate_rows(task, 40, seed=2, split="train")}
        assert len(choices) == 1, (task, choices)
    assert {tuple(r["choices"]) for r in generate_rows("Counting", 40, seed=2, split="train")} == {("1", "2", "3", "4")}


def test_explanations_agree_with_answers() -> None:
    for row in generate_rows("Counting", 30, seed=0, split="val"):
        assert row["explanation"].startswith(f"There are {row['choices'][row['answer']]} ")
    for row in generate_rows("Relative_Depth", 30, seed=0, split="val"):
        a, b = map(float, re.findall(r"\d\.\d+", row["explanation"]))
        assert (a < b) == (row["answer"] == 0)
    for row in generate_rows("Relative_Reflectance", 30, seed=0, split="val"):
        a, b = map(float, re.findall(r"\d\.\d+", row["explanation"]))
        assert row["answer"] == (0 if a < b else 1 if b < a else 2)


def test_unknown_task_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task 'IQ_Test'; expected one of: Art_Style, Counting"):
        generate_suite(tmp_path, seed=0, train_size=1, tasks=["IQ_Test"])
    with pytest.raises(ValueError, match="unknown task 'Countin'"):
        generate_suite(tmp_path, seed=0, train_size=1, val_sizes={"Countin": 3})


def test_base_data(suite: Path, tmp_path: Path) -> None:
    kinds = generate_generic(tmp_path, seed=0, size_per_kind=36)
    assert kinds == GENERIC_KINDS and list_configs(tmp_path) == sorted(GENERIC_KINDS)
    assert not set(kinds) & set(ALL_BLINK)
    task_questions = {q.prompt.split("\n")[0] for t in TASK_NAMES for q in read_split(suite, t, "train")}
    for kind in kinds:
        questions = read_split(tmp_path, kind, "train")
        assert len(questions) == 36
        assert not {q.prompt.split("\n")[0] for q in questions} & task_questions
        for q in questions:
            assert 1 <= len(q.images) <= 4 and 2 <= len(q.choices) <= 4 and 0 <= q.answer < len(q.choices)
            assert all(image.size == (64, 64) for image in q.images)
        by_options: dict[int, Counter] = {}
        for q in questions:
            by_options.setdefault(len(q.choices), Counter())[q.answer] += 1
        for n, answers in by_options.items():   # gold balanced among the options shown
            assert sorted(answers) == list(range(n)) and max(answers.values()) - min(answers.values()) <= 1, kind
    for kind in kinds:   # one fixed option list per question form
        forms: dict[str, set] = {}
        for q in read_split(tmp_path, kind, "train"):
            forms.setdefault(q.prompt.split("\n")[0], set()).add(tuple(q.choices))
        assert all(len(choices) == 1 for choices in forms.values()), kind


def test_val_size_sets_every_val_split_and_leaves_train_alone(suite: Path, tmp_path: Path) -> None:
    data = compose_spec("data.seed=3", f"data.train_size={TRAIN}", f"data.val_size={VAL + 1}").data
    root = suite_root(data, tmp_path)
    assert root != suite_root(dataclasses.replace(data, val_size=VAL), tmp_path)   # its own cache entry
    for task in TASK_NAMES:
        assert len(read_split(root, task, "val")) == VAL + 1
        name = f"{task}/train-00000-of-00001.parquet"
        assert (root / name).read_bytes() == (suite / name).read_bytes(), name


@pytest.mark.parametrize("bad", ["0", "-5", "many", "2.5"])
def test_bad_val_size_is_refused(bad) -> None:
    with pytest.raises(SpecError, match=rf"^data.val_size={re.escape(repr(yaml_value(bad)))}: expected a whole number"):
        compose_spec(f"data.val_size={bad}")
