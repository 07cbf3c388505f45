"""Generic visual-language questions for the pretraining stage of the tiny models, in the BLINK format.

It teaches colours, positions and counts, and the three primitives the planted pairs rest on (colour match,
mark height and leftmost point; see `planted.py`) with questions that none of the 13 tasks asks, in the option
wording of the tasks that rest on them (a tiny model's skill is tied to that wording), so that the base model
can start above chance on the (+) tasks and below it on the (-) ones. Three more generic skills give the base more
targets to lose, in the wording style of the tasks where they apply: the same background (Visual_Similarity's
framing), side by side or one above the other (yes/no, the layout that decides Spatial_Relation) and which of two
flat grey patches is darker (Relative_Reflectance's options, on patches far apart in brightness). Each
generator is `fn(rng, slot, size) -> Row`; slots are drawn evenly, and each kind maps its slot to the gold option
so that gold letters stay balanced. Kinds that a two-layer model did not learn next to these (shape, size, which
image, same image, same place across two images) were dropped: they only diluted the others.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from transfer.data.blink import Row, write_split
from transfer.embedded.suite import balanced_golds
from transfer.embedded.suite.draw import (
    COLORS,
    MARKERS,
    OBJECT_COLORS,
    OUTLINE,
    PLAIN_COLORS,
    SHAPES,
    canvas,
    draw_box,
    draw_ring,
    draw_shape,
    far_apart,
    grid_positions,
    leftmost_by,
    marker_legend,
    paint,
    place_pair,
    px,
    random_shapes,
)
from transfer.embedded.suite.images import BACKDROPS, CANDIDATE_CHOICES
from transfer.embedded.suite.scenes import POINT_CHOICES, REFLECTANCE_CHOICES

# Options come in one fixed order per kind (a colour is always the same letter), so the gold letter is a function
# of the image alone: a two-layer language model cannot learn to look an answer up in a shuffled option list.
GENERIC_COLORS = ("red", "green", "blue", "yellow")
GENERIC_COUNTS = ("1", "2", "3", "4")


def generic_color(rng: random.Random, slot: int, size: int) -> Row:
    """One shape; name its colour (4 options)."""
    color = GENERIC_COLORS[slot]
    [(shape, _, x, y, r)] = random_shapes(rng, size, 1, (10, 16))
    shapes = [(shape, color, x, y, r)]
    return Row(question="What colour is the shape?", sub_task="Base_Color", images=[paint(canvas(size)[0], shapes)],
               choices=list(GENERIC_COLORS), answer=slot, explanation=f"A {color} {shape}.")


SIDES = ("on the left", "on the right", "at the top", "at the bottom")


def generic_position(rng: random.Random, slot: int, size: int) -> Row:
    """One shape near the left, right, top or bottom edge; say which (4 options)."""
    side = SIDES[slot]
    shape, color = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    r = px(size, rng.uniform(9, 12))
    near, middle = rng.uniform(r + 1, 0.3 * size), rng.uniform(0.38 * size, 0.62 * size)
    x, y = {"on the left": (near, middle), "on the right": (size - near, middle),
            "at the top": (middle, near), "at the bottom": (middle, size - near)}[side]
    image, draw = canvas(size)
    draw_shape(draw, shape, x, y, r, COLORS[color], OUTLINE)
    return Row(question=f"Where in the picture is the {color} {shape}?", sub_task="Base_Position", images=[image],
               choices=list(SIDES), answer=slot, explanation=f"It is {side}.")


def generic_count(rng: random.Random, slot: int, size: int) -> Row:
    """1-4 shapes of any kind and colour; count them all (4 options)."""
    n = slot + 1
    r = px(size, 8)
    image, draw = canvas(size)
    for x, y in grid_positions(rng, n, size, r):
        draw_shape(draw, rng.choice(SHAPES), x, y, r, COLORS[rng.choice(OBJECT_COLORS)], OUTLINE)
    return Row(question="Count all the shapes. How many are there?", sub_task="Base_Count", images=[image],
               choices=list(GENERIC_COUNTS), answer=slot, explanation=f"{n} shapes.")


def _reference_and_candidates(scene: Callable[[int], Image.Image], backdrop: int, other: int,
                              slot: int) -> list[Image.Image]:
    """A reference on `backdrop` and two candidates, the one on `backdrop` at `slot` (0: second image, 1: third)."""
    candidates = [scene(backdrop), scene(other)]
    if slot == 1:
        candidates.reverse()
    return [scene(backdrop), *candidates]


def generic_colour_match(rng: random.Random, slot: int, size: int) -> Row:
    """Three images of shapes on a backdrop; the match repeats the first one's backdrop and colours with other
    shapes, the lure has another backdrop (2 options)."""
    backdrop, other = rng.sample(range(len(BACKDROPS)), 2)
    colors = tuple(rng.sample(OBJECT_COLORS, 2))

    def scene(back: int) -> Image.Image:
        return paint(canvas(size, BACKDROPS[back])[0], random_shapes(rng, size, rng.randint(1, 2), (9, 13), colors))

    return Row(question="Use the first image as the reference. Which one of the second or the third image has the "
                        "colours of the reference image?",
               sub_task="Base_Colour_Match", images=_reference_and_candidates(scene, backdrop, other, slot),
               choices=list(CANDIDATE_CHOICES), answer=slot, explanation=f"Image {slot + 2}.")


def generic_lower_mark(rng: random.Random, slot: int, size: int) -> Row:
    """A red (A) and a blue (B) mark, both circled points or both boxes, among shapes, one in the lower half of the
    image and one in the upper half: which is lower (2 options)?"""
    low = (rng.uniform(0.15, 0.85) * size, rng.uniform(0.6, 0.85) * size)
    high = (rng.uniform(0.15, 0.85) * size, rng.uniform(0.15, 0.4) * size)
    spots = [low, high] if slot == 0 else [high, low]   # A, B
    image = paint(canvas(size)[0], random_shapes(rng, size, rng.randint(1, 3), (8, 12), PLAIN_COLORS))
    draw = ImageDraw.Draw(image)
    boxes = rng.random() < 0.5
    half = px(size, 7)
    for label, (x, y) in zip("AB", spots):
        if boxes:
            draw_box(draw, (x - half, y - half, x + half, y + half), MARKERS[label], size)
        else:
            draw_ring(draw, x, y, MARKERS[label], size)
    if boxes:
        question = "Two boxes are drawn: Box A (red) and Box B (blue). Which box is lower in the image?"
        choices = ["Box A", "Box B"]
    else:
        question = (f"Two points are circled: {marker_legend(['A', 'B'])}. Which point is closer to the bottom of the "
                    "image?")
        choices = ["A", "B"]
    return Row(question=question, sub_task="Base_Lower_Mark", images=[image], choices=choices, answer=slot,
               explanation=f"{'Box ' if boxes else ''}{'AB'[slot]} is lower.")


def generic_left_mark(rng: random.Random, slot: int, size: int) -> Row:
    """Four circled points among shapes, one clearly left of the others: which is furthest left (4 options)?"""
    while True:
        spots = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size) for _ in range(4)]
        spots.sort()
        if leftmost_by(spots[0], spots[1:], px(size, 8)) and far_apart(spots, px(size, 12)):
            break
    others = spots[1:]
    rng.shuffle(others)
    others.insert(slot, spots[0])
    image = paint(canvas(size)[0], random_shapes(rng, size, rng.randint(1, 3), (8, 12), PLAIN_COLORS))
    draw = ImageDraw.Draw(image)
    for label, (x, y) in zip("ABCD", others):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"Four points are circled: {marker_legend(list('ABCD'))}. Which point is furthest to the "
                        f"left?", sub_task="Base_Left_Mark", images=[image], choices=list(POINT_CHOICES),
               answer=slot, explanation=f"Point {'ABCD'[slot]} is furthest left.")


def generic_same_backdrop(rng: random.Random, slot: int, size: int) -> Row:
    """Three images of different shapes; which of the latter two has the first one's background (2 options)?"""
    backdrop, other = rng.sample(range(len(BACKDROPS)), 2)

    def scene(back: int) -> Image.Image:
        return paint(canvas(size, BACKDROPS[back])[0], random_shapes(rng, size, rng.randint(1, 3), (8, 12)))

    return Row(question="Given three images, take the first image as reference. Which one of the latter two images "
                        "has the same background colour as the first one?",
               sub_task="Base_Same_Backdrop", images=_reference_and_candidates(scene, backdrop, other, slot),
               choices=list(CANDIDATE_CHOICES), answer=slot, explanation=f"Image {slot + 2}.")


def generic_side_by_side(rng: random.Random, slot: int, size: int) -> Row:
    """Two shapes, side by side (yes) or one above the other (no), in either order (2 options)."""
    looks = [(rng.choice(SHAPES), c) for c in rng.sample(OBJECT_COLORS, 2)]
    radii = [px(size, rng.uniform(8, 11)) for _ in range(2)]
    centres = place_pair(rng, radii, size, "x" if slot == 0 else "y")
    (s1, c1), (s2, c2) = looks
    shapes = [(s, c, x, y, r) for (s, c), (x, y), r in zip(looks, centres, radii)]
    return Row(question=f"Are the {c1} {s1} and the {c2} {s2} side by side?", sub_task="Base_Side_By_Side",
               images=[paint(canvas(size)[0], shapes)], choices=["yes", "no"], answer=slot,
               explanation="Side by side." if slot == 0 else "One above the other.")


GREY_LEVELS = (60, 110, 160, 210)   # flat patch brightness, far enough apart to read at a glance


def generic_darker_patch(rng: random.Random, slot: int, size: int) -> Row:
    """Two flat grey patches, left and right or top and bottom, clearly different in brightness or the same, a
    circled point on each: which point is on the darker patch, or are they about the same (3 options)?"""
    if slot == 2:
        levels = [rng.choice(GREY_LEVELS)] * 2
    else:
        levels = rng.sample(GREY_LEVELS, 2)
        levels.sort(reverse=slot == 1)   # slot 0: A on the darker patch
    image, draw = canvas(size)
    cut = rng.randint(px(size, 24), px(size, 40))
    vertical = rng.random() < 0.5
    halves = [(0, 0, cut, size), (cut, 0, size, size)] if vertical else [(0, 0, size, cut), (0, cut, size, size)]
    order = [0, 1] if rng.random() < 0.5 else [1, 0]   # which half holds A
    margin = px(size, 6)
    points = []
    for level, half in zip(levels, order):
        x0, y0, x1, y1 = halves[half]
        draw.rectangle((x0, y0, x1, y1), fill=(level, level, level))
        points.append((rng.randint(x0 + margin, x1 - margin), rng.randint(y0 + margin, y1 - margin)))
    for label, (x, y) in zip("AB", points):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"Two points are circled: {marker_legend(['A', 'B'])}. Which point lies on a darker "
                        f"patch, or are the two patches about the same?", sub_task="Base_Darker_Patch",
               images=[image], choices=list(REFLECTANCE_CHOICES), answer=slot,
               explanation=f"Grey levels: A {levels[0]}, B {levels[1]}.")


GenericGenerator = Callable[[random.Random, int, int], Row]
GENERIC_GENERATORS: dict[str, tuple[GenericGenerator, int]] = {   # kind -> (generator, number of slots)
    "Base_Color": (generic_color, 4),
    "Base_Position": (generic_position, 4),
    "Base_Count": (generic_count, 4),
    "Base_Colour_Match": (generic_colour_match, 2),
    "Base_Lower_Mark": (generic_lower_mark, 2),
    "Base_Left_Mark": (generic_left_mark, 4),
    "Base_Same_Backdrop": (generic_same_backdrop, 2),
    "Base_Side_By_Side": (generic_side_by_side, 2),
    "Base_Darker_Patch": (generic_darker_patch, 3),
}
GENERIC_KINDS: list[str] = list(GENERIC_GENERATORS)


def generate_generic(root: str | Path, *, seed: int, size_per_kind: int, image_size: int = 64) -> list[str]:
    """Write `<root>/<Base_Kind>/train-00000-of-00001.parquet` for every base kind; returns the kinds."""
    for kind, (generator, slots) in GENERIC_GENERATORS.items():
        rng = random.Random(f"{seed}/{kind}/train")
        rows = [generator(rng, slot, image_size) for slot in balanced_golds(rng, size_per_kind, slots)]
        write_split(root, kind, "train", rows)
    return list(GENERIC_KINDS)
