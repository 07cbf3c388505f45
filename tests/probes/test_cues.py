"""probes/cues.py: each ablation removes its cue and keeps the planted primitive's answer, and is undone after."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from probes import cues
from tests.helpers import mark_height_pick
from transfer.embedded.suite import draw, scenes


def _near_and_far(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Pixel masks of a near (z 1) and a far (z 1.75) circle, drawn with whatever `draw.project` is in place."""
    things = [draw.Thing(-0.5, 1.0, "circle", "purple"), draw.Thing(0.5, 1.75, "circle", "orange")]
    image, _ = draw.render_scene(things, size)
    pixels = np.asarray(image.convert("RGB")).astype(int)
    return tuple((pixels == np.array(draw.COLORS[t.color])).all(-1) for t in things)


def test_one_size_draws_near_and_far_objects_alike_with_their_feet_in_place() -> None:
    near, far = _near_and_far()
    assert near.sum() > 1.5 * far.sum()   # as usual, the nearer object is drawn larger
    feet = [np.nonzero(mask)[0].max() for mask in (near, far)]
    with cues.ABLATIONS["one size"].patch():
        near_one, far_one = _near_and_far()
    assert near_one.sum() == far_one.sum()
    assert [np.nonzero(mask)[0].max() for mask in (near_one, far_one)] == feet   # the height cue stays
    assert draw.project is cues.PROJECT


def test_one_size_questions_keep_the_lower_point_as_the_nearer_one(tmp_path: Path) -> None:
    rows = cues.questions(cues.ABLATIONS["one size"], "Relative_Depth", 40, 3, tmp_path)
    assert all(mark_height_pick({"images": q.images}) == q.answer for q in rows)
    assert draw.project is cues.PROJECT


def test_one_albedo_leaves_only_the_height_of_the_points_to_tell_the_answer(tmp_path: Path) -> None:
    albedos = scenes.ALBEDOS
    rows = cues.questions(cues.ABLATIONS["one albedo"], "Relative_Reflectance", 60, 3, tmp_path)
    assert scenes.ALBEDOS == albedos
    assert {q.answer for q in rows} == {0, 1, 2}
    for question in rows:
        a, b = map(float, re.findall(r"[AB] ([0-9]+\.[0-9]+)", question.meta["explanation"]))
        assert a == b, question.meta["explanation"]   # the pixels cannot tell which surface is darker
        if question.answer < 2:   # the floor point, the lower one
            assert mark_height_pick({"images": question.images}) == question.answer
