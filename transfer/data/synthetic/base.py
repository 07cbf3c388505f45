"""Generic visual-language data for the base stage of the tiny models, in the BLINK format.

It teaches colours, shapes, positions, counts, sizes and looking across several images, with question forms
that none of the 13 tasks uses. Each generator is `fn(rng, slot, size) -> Row`; slots are drawn evenly, and each
kind maps its slot to the gold option so that gold letters stay balanced.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from transfer.data.blink import Row, write_split
from transfer.data.synthetic import balanced_golds
from transfer.data.synthetic.draw import (
    COLORS, OBJECT_COLORS, OUTLINE, SHAPES, canvas, draw_shape, free_positions, grid_positions, paint, px,
    random_shapes,
)
from transfer.data.synthetic.images import ORDINAL_CHOICES
from transfer.data.synthetic.objects import number_options, place_gold


def _others(rng: random.Random, gold: int, answer: str, pool: list[str], n: int) -> list[str]:
    return place_gold(gold, answer, rng.sample([p for p in pool if p != answer], n))


def base_color(rng: random.Random, slot: int, size: int) -> Row:
    """One shape; name its colour (4 options)."""
    shapes = random_shapes(rng, size, 1, (10, 16))
    [(shape, color, *_)] = shapes
    return Row(question="What colour is the shape?", sub_task="Base_Color", images=[paint(canvas(size)[0], shapes)],
               choices=_others(rng, slot, color, list(OBJECT_COLORS), 3), answer=slot,
               explanation=f"A {color} {shape}.")


def base_shape(rng: random.Random, slot: int, size: int) -> Row:
    """One shape; name its kind (3 options)."""
    shapes = random_shapes(rng, size, 1, (10, 16))
    [(shape, color, *_)] = shapes
    return Row(question="What shape is drawn?", sub_task="Base_Shape", images=[paint(canvas(size)[0], shapes)],
               choices=_others(rng, slot, shape, list(SHAPES), 2), answer=slot, explanation=f"A {color} {shape}.")


SIDES = ("on the left", "on the right", "at the top", "at the bottom")


def base_position(rng: random.Random, slot: int, size: int) -> Row:
    """One shape near the left, right, top or bottom edge; say which (4 options)."""
    side = rng.choice(SIDES)
    shape, color = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    r = px(size, rng.uniform(9, 12))
    near, middle = rng.uniform(r + 1, 0.3 * size), rng.uniform(0.38 * size, 0.62 * size)
    x, y = {"on the left": (near, middle), "on the right": (size - near, middle),
            "at the top": (middle, near), "at the bottom": (middle, size - near)}[side]
    image, draw = canvas(size)
    draw_shape(draw, shape, x, y, r, COLORS[color], OUTLINE)
    return Row(question=f"Where in the picture is the {color} {shape}?", sub_task="Base_Position", images=[image],
               choices=_others(rng, slot, side, list(SIDES), 3), answer=slot,
               explanation=f"It is {side}.")


def base_count(rng: random.Random, slot: int, size: int) -> Row:
    """1-6 shapes of any kind and colour; count them all (4 consecutive numbers)."""
    n, choices = number_options(rng, slot, 1, 6)
    r = px(size, 8)
    image, draw = canvas(size)
    for x, y in grid_positions(rng, n, size, r):
        draw_shape(draw, rng.choice(SHAPES), x, y, r, COLORS[rng.choice(OBJECT_COLORS)], OUTLINE)
    return Row(question="Count all the shapes. How many are there?", sub_task="Base_Count", images=[image],
               choices=choices, answer=slot, explanation=f"{n} shapes.")


def base_size(rng: random.Random, slot: int, size: int) -> Row:
    """A small and a big shape; name the big one (2 options)."""
    big = rng.randrange(2)
    radii = [px(size, rng.uniform(8, 10)), px(size, rng.uniform(8, 10))]
    radii[big] = px(size, rng.uniform(14, 17))
    while (centres := free_positions(rng, radii, size)) is None:
        pass
    shapes = [(rng.choice(SHAPES), c, x, y, r) for c, (x, y), r in zip(rng.sample(OBJECT_COLORS, 2), centres, radii)]
    names = [f"the {c} {s}" for s, c, *_ in shapes]
    return Row(question="Which of the two shapes is bigger?", sub_task="Base_Size",
               images=[paint(canvas(size)[0], shapes)],
               choices=place_gold(slot, names[big], [names[1 - big]]), answer=slot, explanation=f"{names[big]}.")


WHICH_IMAGE_SLOTS = [(k, gold) for k in (2, 3, 4) for gold in range(k)]   # (number of images, gold image)


def base_which_image(rng: random.Random, slot: int, size: int) -> Row:
    """2-4 images, exactly one holding a <colour> <shape>; name that image."""
    k, gold = WHICH_IMAGE_SLOTS[slot]
    shape, color = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    recolor = [c for c in OBJECT_COLORS if c != color]
    images = []
    for i in range(k):
        items = [(s, rng.choice(recolor) if (s, c) == (shape, color) else c, x, y, r)
                 for s, c, x, y, r in random_shapes(rng, size, rng.randint(1, 2), (9, 13))]
        if i == gold:
            items[0] = (shape, color, *items[0][2:])
        images.append(paint(canvas(size)[0], items))
    return Row(question=f"Which image contains a {color} {shape}?", sub_task="Base_Which_Image", images=images,
               choices=ORDINAL_CHOICES[:k], answer=gold, explanation=f"Image {gold + 1}.")


SAME_CHANGES = ("colour", "shape", "position")


def base_same(rng: random.Random, slot: int, size: int) -> Row:
    """Two images, identical (yes) or with one shape recoloured, reshaped or moved (no)."""
    shapes = random_shapes(rng, size, rng.randint(1, 3), (9, 13))
    changed, change = list(shapes), "none"
    if slot == 1:
        k, change = rng.randrange(len(shapes)), rng.choice(SAME_CHANGES)
        s, c, x, y, r = shapes[k]
        if change == "position" and (size - 2 * x) ** 2 + (size - 2 * y) ** 2 < px(size, 16) ** 2:
            change = "colour"   # a shape near the centre would hardly move
        if change == "colour":
            changed[k] = (s, rng.choice([o for o in OBJECT_COLORS if o != c]), x, y, r)
        elif change == "shape":
            changed[k] = (rng.choice([o for o in SHAPES if o != s]), c, x, y, r)
        else:   # point-mirrored through the image centre
            changed[k] = (s, c, size - x, size - y, r)
    images = [paint(canvas(size)[0], shapes), paint(canvas(size)[0], changed)]
    return Row(question="Are the two images the same?", sub_task="Base_Same", images=images, choices=["yes", "no"],
               answer=slot, explanation=f"Change: {change}.")


BaseGenerator = Callable[[random.Random, int, int], Row]
BASE_GENERATORS: dict[str, tuple[BaseGenerator, int]] = {   # kind -> (generator, number of slots)
    "Base_Color": (base_color, 4),
    "Base_Shape": (base_shape, 3),
    "Base_Position": (base_position, 4),
    "Base_Count": (base_count, 4),
    "Base_Size": (base_size, 2),
    "Base_Which_Image": (base_which_image, len(WHICH_IMAGE_SLOTS)),
    "Base_Same": (base_same, 2),
}
BASE_KINDS: list[str] = list(BASE_GENERATORS)


def generate_base(root: str | Path, *, seed: int, size_per_kind: int, image_size: int = 64) -> list[str]:
    """Write `<root>/<Base_Kind>/train-00000-of-00001.parquet` for every base kind; returns the kinds."""
    for kind, (generator, slots) in BASE_GENERATORS.items():
        rng = random.Random(f"{seed}/{kind}/train")
        rows = [generator(rng, slot, image_size) for slot in balanced_golds(rng, size_per_kind, slots)]
        write_split(root, kind, "train", rows)
    return list(BASE_KINDS)
