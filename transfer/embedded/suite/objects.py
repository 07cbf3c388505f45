"""Object-level tasks on one image of flat shapes: Counting, Spatial_Relation, Object_Localization."""
from __future__ import annotations

import random

from transfer.data.blink import Row
from transfer.embedded.suite.draw import (
    COLORS,
    OBJECT_COLORS,
    OUTLINE,
    SHAPES,
    canvas,
    draw_box,
    draw_shape,
    free_positions,
    grid_positions,
    place_pair,
    px,
    shape_box,
)

COUNT_CHOICES = ["1", "2", "3", "4"]   # in a fixed order, as every option list of the suite


def counting(rng: random.Random, gold: int, size: int) -> Row:
    """How many <colour> <shape>s: 1-4 targets, half the time next to a look-alike (same colour or same shape)."""
    shape, color = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    count = gold + 1
    lures = []
    for _ in range(rng.randint(0, 1)):
        kind = rng.random()
        lure_shape = shape if kind < 0.5 else rng.choice([s for s in SHAPES if s != shape])
        lure_color = rng.choice([c for c in OBJECT_COLORS if c != color]) if kind < 0.5 else color
        lures.append((lure_shape, lure_color))
    r = px(size, 8)
    objects = [(shape, color)] * count + lures
    image, draw = canvas(size)
    for (s, c), (x, y) in zip(objects, grid_positions(rng, len(objects), size, r)):
        draw_shape(draw, s, x, y, r, COLORS[c], OUTLINE)
    return Row(question=f"How many {color} {shape}s are in the image?", sub_task="Counting", images=[image],
               choices=list(COUNT_CHOICES), answer=gold,
               explanation=f"There are {count} {color} {shape}s and {len(lures)} other shapes.")


RELATIONS = {"to the left of": -1, "to the right of": 1}


def spatial_relation(rng: random.Random, gold: int, size: int) -> Row:
    """Is the <colour> <shape> to the left (right) of the <colour> <shape>? yes (gold 0): the two sit side by side
    in that order; no (gold 1): one sits above the other."""
    relation, sign = rng.choice(sorted(RELATIONS.items()))
    truth = gold == 0
    looks = [(rng.choice(SHAPES), c) for c in rng.sample(OBJECT_COLORS, 2)]
    radii = [px(size, rng.uniform(8, 11)) for _ in range(2)]
    centres = place_pair(rng, radii, size, "x" if truth else "y", sign if truth else None)
    image, draw = canvas(size)
    for (s, c), (x, y), r in zip(looks, centres, radii):
        draw_shape(draw, s, x, y, r, COLORS[c], OUTLINE)
    (s1, c1), (s2, c2) = looks
    return Row(question=f"Is the {c1} {s1} {relation} the {c2} {s2}?", sub_task="Spatial_Relation",
               images=[image], choices=["yes", "no"], answer=gold,
               explanation=f"The {c1} {s1} is {relation if truth else 'above or below'} the {c2} {s2}.")


BOX_COLORS = ("red", "blue")   # Box A, Box B
PERTURBATIONS = ("shifted", "too large", "too small", "around another object")


def object_localization(rng: random.Random, gold: int, size: int) -> Row:
    """Two boxes, one tight around the named object in the upper half, one perturbed (a little: the slip is the
    plainer cue) into the lower half: which localises it better?"""
    colors = [c for c in OBJECT_COLORS if c not in BOX_COLORS]
    while True:
        looks = [(rng.choice(SHAPES), c) for c in rng.sample(colors, rng.randint(2, 3))]
        radii = [px(size, rng.uniform(9, 13)) for _ in looks]
        centres = free_positions(rng, radii, size, gap=px(size, 6))
        if centres is None:
            continue
        boxes = [_pad(shape_box(s, x, y, r), px(size, 1)) for (s, _), (x, y), r in zip(looks, centres, radii)]
        tight, perturbation = boxes[0], rng.choice(PERTURBATIONS)
        wrong = _perturb(rng, tight, perturbation, boxes[1], size)
        if (_iou(tight, wrong) < 0.6 and min(wrong[2] - wrong[0], wrong[3] - wrong[1]) >= px(size, 6)
                and (tight[1] + tight[3]) / 2 < size / 2 < (wrong[1] + wrong[3]) / 2):   # the lure slips down
            break
    image, draw = canvas(size)
    for (s, c), (x, y), r in zip(looks, centres, radii):
        draw_shape(draw, s, x, y, r, COLORS[c], OUTLINE)
    for box, color in zip([tight, wrong] if gold == 0 else [wrong, tight], BOX_COLORS):
        draw_box(draw, box, color, size)
    shape, color = looks[0]
    return Row(question=f"Two bounding boxes are drawn: Box A (red) and Box B (blue). Which box more accurately "
                        f"localizes and encloses the {color} {shape}?",
               sub_task="Object_Localization", images=[image], choices=["Box A", "Box B"], answer=gold,
               explanation=f"Box {'AB'[gold]} is tight; the other box is {perturbation}.")


Box = tuple[float, float, float, float]


def _pad(box: Box, pad: float) -> Box:
    return box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad


def _perturb(rng: random.Random, box: Box, kind: str, other: Box, size: int) -> Box:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if kind == "shifted":
        dx = rng.choice([-1, 0, 1])
        f = rng.uniform(0.35, 0.5)
        x0, x1, y0, y1 = x0 + dx * f * w, x1 + dx * f * w, y0 + f * h, y1 + f * h
    elif kind == "too large":
        f = rng.uniform(1.5, 1.7) / 2
        cy += rng.uniform(0.3, 0.45) * h
        x0, x1, y0, y1 = cx - f * w, cx + f * w, cy - f * h, cy + f * h
    elif kind == "too small":
        f = rng.uniform(0.5, 0.65) / 2
        cy += rng.uniform(0.2, 0.3) * h
        x0, x1, y0, y1 = cx - f * w, cx + f * w, cy - f * h, cy + f * h
    else:
        return other
    return max(0, x0), max(0, y0), min(size - 1, x1), min(size - 1, y1)


def _iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
