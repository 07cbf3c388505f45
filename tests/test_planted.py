"""The planted transfer table agrees with what the generators draw, and only the checks read it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.helpers import PICKS, centre, pixels
from transfer.data.blink import read_split
from transfer.embedded.planted import PRIMITIVES, TASK_PRIMITIVES, planted_table, relation
from transfer.embedded.suite import generate_rows, generate_suite
from transfer.embedded.suite.draw import MARKERS
from transfer.embedded.suite.generic import generate_generic
from transfer.embedded.suite.images import add_vignette
from transfer.tasks import TASK_NAMES

N = 80


@pytest.mark.parametrize("task", [t for t in TASK_NAMES if TASK_PRIMITIVES[t][0] in PICKS])
def test_generators_realise_their_planted_mapping(task: str) -> None:
    """A shared primitive picks the answer on (+1) tasks and the lure on (-1) tasks, measured on the pixels
    (Relative_Reflectance: on the questions whose answer is a point, not "about the same")."""
    primitive, mapping = TASK_PRIMITIVES[task]
    rows = [r for r in generate_rows(task, N, seed=5, split="val") if r["answer"] < 2 or primitive != "mark_height"]
    agree = np.mean([PICKS[primitive](row) == row["answer"] for row in rows])
    if mapping > 0:
        assert agree >= 0.95, f"{task}: {primitive} picks the answer in only {agree:.0%} of questions"
    else:
        assert agree <= 0.05, f"{task}: {primitive} picks the answer in {agree:.0%} of questions; expected the lure"


def test_functional_correspondence_answer_is_the_rightmost_point() -> None:
    for row in generate_rows("Functional_Correspondence", 40, seed=0, split="val"):
        xs = [centre(row["images"][1], MARKERS[label])[0] for label in "ABCD"]
        assert int(np.argmax(xs)) == row["answer"]


def test_base_left_mark_answer_is_the_leftmost_point(tmp_path: Path) -> None:
    generate_generic(tmp_path, seed=0, size_per_kind=24)
    for q in read_split(tmp_path, "Base_Left_Mark", "train"):
        xs = [centre(q.images[0], MARKERS[label])[0] for label in "ABCD"]
        assert int(np.argmin(xs)) == q.answer and sorted(xs)[1] - sorted(xs)[0] >= 8


def test_base_side_by_side_answer_follows_the_layout(tmp_path: Path) -> None:
    """yes: the two named shapes sit side by side (either order); no: one sits above the other."""
    generate_generic(tmp_path, seed=0, size_per_kind=24)
    for q in read_split(tmp_path, "Base_Side_By_Side", "train"):
        first, second = re.match(r"Are the (\w+) \w+ and the (\w+) \w+ side by side\?", q.prompt).groups()
        (x1, y1), (x2, y2) = (centre(q.images[0], c) for c in (first, second))
        assert (abs(x1 - x2) > abs(y1 - y2)) == (q.answer == 0), q.meta


def _background(image) -> tuple[int, ...]:
    colours, counts = np.unique(pixels(image).reshape(-1, 3), axis=0, return_counts=True)
    return tuple(colours[counts.argmax()])


def test_base_same_backdrop_answer_has_the_reference_background(tmp_path: Path) -> None:
    generate_generic(tmp_path, seed=0, size_per_kind=24)
    for q in read_split(tmp_path, "Base_Same_Backdrop", "train"):
        reference, *candidates = (_background(image) for image in q.images)
        assert candidates[q.answer] == reference != candidates[1 - q.answer]


def test_base_darker_patch_answer_follows_the_grey_under_the_points(tmp_path: Path) -> None:
    """A darker (B darker) when the grey at A's ring centre is darker (lighter) than at B's; the same grey:
    about the same."""
    generate_generic(tmp_path, seed=0, size_per_kind=24)
    for q in read_split(tmp_path, "Base_Darker_Patch", "train"):
        grey_a, grey_b = (pixels(q.images[0])[round(y), round(x)].mean()
                          for x, y in (centre(q.images[0], MARKERS[label]) for label in "AB"))
        assert q.answer == (2 if grey_a == grey_b else 0 if grey_a < grey_b else 1), q.meta


def test_spatial_relation_answer_follows_the_layout() -> None:
    """yes: the two named shapes sit side by side in the named order; no: one sits above the other."""
    for row in generate_rows("Spatial_Relation", 40, seed=0, split="val"):
        first, second = re.match(r"Is the (\w+) \w+ .* the (\w+) \w+\?", row["question"]).groups()
        (x1, y1), (x2, y2) = (centre(row["images"][0], c) for c in (first, second))
        assert (abs(x1 - x2) > abs(y1 - y2)) == (row["answer"] == 0), row["explanation"]
        if row["answer"] == 0:
            assert (x1 < x2) == ("to the left of" in row["question"]), row["question"]


def _corner_to_centre(image) -> float:
    """Mean brightness of the four 6x6 corners over that of the central 12x12 block."""
    grey = pixels(image).mean(axis=2)
    corners = [grey[:6, :6], grey[:6, -6:], grey[-6:, :6], grey[-6:, -6:]]
    return float(np.mean(corners)) / float(grey[26:38, 26:38].mean())


def test_forensic_answer_is_the_one_image_through_a_lens() -> None:
    """Pixel-to-pixel roughness (mean absolute difference of horizontal neighbours: grain) and darkened corners
    (vignetting) each single out the answer."""
    for row in generate_rows("Forensic_Detection", 40, seed=0, split="val"):
        roughness = [np.abs(np.diff(pixels(image), axis=1)).mean() for image in row["images"]]
        assert int(np.argmax(roughness)) == row["answer"]
        assert sorted(roughness)[-1] > 1.5 * sorted(roughness)[-2]
        assert int(np.argmin([_corner_to_centre(image) for image in row["images"]])) == row["answer"]
    assert _corner_to_centre(add_vignette(Image.new("RGB", (64, 64), (200, 200, 200)))) < 0.5


def test_every_shared_primitive_has_a_pixel_check() -> None:
    shared = {p for p, _ in TASK_PRIMITIVES.values() if sum(q == p for q, _ in TASK_PRIMITIVES.values()) > 1}
    assert shared == set(PICKS)


def test_table_covers_every_ordered_pair_and_is_symmetric() -> None:
    table = planted_table()
    assert table.height == 13 * 12 and set(TASK_PRIMITIVES) == set(TASK_NAMES)
    assert set(TASK_PRIMITIVES[t][0] for t in TASK_NAMES) <= set(PRIMITIVES)
    pairs = {(r["source_task"], r["target_task"]): r["relation"] for r in table.iter_rows(named=True)}
    assert all(pairs[(s, t)] == pairs[(t, s)] for s, t in pairs)
    counts = table["relation"].value_counts().rows()
    assert dict(counts) == {"positive": 6, "negative": 12, "none": 138}
    assert relation("Art_Style", "Visual_Similarity") == "positive"
    assert relation("Relative_Depth", "Object_Localization") == "negative"
    assert relation("Counting", "Jigsaw") == "none"


def test_suite_writes_the_table_for_the_checks(tmp_path: Path) -> None:
    root = generate_suite(tmp_path, seed=0, train_size=2, val_sizes={t: 2 for t in TASK_NAMES})
    assert pl.read_parquet(root / "planted.parquet").equals(planted_table())


def test_model_training_and_evaluation_code_never_read_the_table() -> None:
    package = Path(__file__).parents[1] / "transfer"
    readers = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if re.search(r"(from|import) [\w.]*planted", p.read_text())}
    assert readers <= {"embedded/suite/__init__.py", "analysis/validation.py"}, readers
