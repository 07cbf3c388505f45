"""Part-level correspondence between two different objects: Functional_Correspondence (tools: handle vs head)
and Semantic_Correspondence (animals: head, tail, front and back feet)."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from transfer.data.blink import Row
from transfer.embedded.suite.draw import (
    BACKGROUND,
    COLORS,
    MARKERS,
    OUTLINE,
    PLAIN_COLORS,
    SHAPES,
    Color,
    canvas,
    draw_ring,
    draw_shape,
    far_apart,
    free_spot,
    marker_legend,
    px,
)
from transfer.embedded.suite.scenes import POINT_CHOICES

Point = tuple[float, float]


@dataclass(frozen=True)
class Pose:
    """Where a part-based object is drawn: centre, scale (in 64 px units), rotation and left-right mirror."""
    x: float
    y: float
    scale: float
    angle: float = 0.0
    mirror: bool = False

    def __call__(self, local: Point) -> Point:
        u, v = (-local[0] if self.mirror else local[0]), local[1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.x + self.scale * (u * c - v * s), self.y + self.scale * (u * s + v * c)

    def polygon(self, points: list[Point]) -> list[Point]:
        return [self(p) for p in points]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _bar(start: Point, end: Point, half_width: float) -> list[Point]:
    dx, dy = end[0] - start[0], end[1] - start[1]
    n = math.hypot(dx, dy)
    ox, oy = -dy / n * half_width, dx / n * half_width
    return [(start[0] + ox, start[1] + oy), (end[0] + ox, end[1] + oy), (end[0] - ox, end[1] - oy),
            (start[0] - ox, start[1] - oy)]


# ---- Functional_Correspondence: tools with a handle (to hold) and a head (to act) ----

TOOL_HEADS = ("pan", "hammer", "knife")
TOOL_PARTS = ("handle", "head")


def draw_tool(draw: ImageDraw.ImageDraw, head: str, pose: Pose, fill: Color | int) -> dict[str, Point]:
    """A handle along the local x axis with a head at its end; returns the point of each part."""
    draw.polygon(pose.polygon(_rect(-22, -3, 3, 3)), fill=fill)
    if head == "pan":
        x, y = pose((12, 0))
        r = 10 * pose.scale
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        head_point = (12, 0)
    elif head == "hammer":
        draw.polygon(pose.polygon(_rect(3, -12, 14, 12)), fill=fill)
        head_point = (8.5, 0)
    else:
        draw.polygon(pose.polygon([(3, -7), (24, 0), (3, 7)]), fill=fill)
        head_point = (9, 0)
    return {"handle": pose((-11, 0)), "head": pose(head_point)}



def _tool_image(rng: random.Random, head: str, size: int, angle: float, centre_x: float = 32
                ) -> tuple[Image.Image, np.ndarray, dict[str, Point]]:
    """A tool near (`centre_x`, 32) in 64 px units; also its mask and the point of each part."""
    pose = Pose((centre_x + rng.uniform(-3, 3)) * size / 64, size / 2 + rng.uniform(-3, 3) * size / 64,
                size / 64 * rng.uniform(0.9, 1.1), angle)
    image, draw = canvas(size)
    mask = Image.new("L", (size, size), 0)
    parts = draw_tool(draw, head, pose, COLORS[rng.choice(PLAIN_COLORS)])
    draw_tool(ImageDraw.Draw(mask), head, pose, 255)
    return image, np.asarray(mask) > 0, parts


def functional_correspondence(rng: random.Random, gold: int, size: int) -> Row:
    """REF on the handle or head of one tool; points on the handle and head of a different tool, turned half
    round, on a loose shape and on the background: which point serves the same function? The second tool lies
    with its other part (the lure) as the one point in the left half of the image, and the matching part as the
    rightmost point."""
    heads = rng.sample(TOOL_HEADS, 2)
    part = rng.choice(TOOL_PARTS)
    other_part = "head" if part == "handle" else "handle"
    angle = (0.0 if part == "head" else math.pi) + rng.uniform(-0.35, 0.35)   # the second tool's: part to the right
    first, _, first_parts = _tool_image(rng, heads[0], size, angle + math.pi + rng.uniform(-0.3, 0.3))
    ref = first_parts[part]
    gap = px(size, 3)
    while True:
        second, occupied, parts = _tool_image(rng, heads[1], size, angle, centre_x=37)
        lure, answer = parts[other_part], parts[part]
        if lure[0] > size / 2 - gap:
            continue
        between = (size / 2 + gap, answer[0] - gap)   # the loose shape and the empty point lie between the parts
        blob = free_spot(rng, occupied, px(size, 12), size, x_range=between)
        if blob is None:
            continue
        draw = ImageDraw.Draw(second)
        draw_shape(draw, rng.choice(SHAPES), *blob, px(size, 8), COLORS[rng.choice(PLAIN_COLORS)], OUTLINE)
        yy, xx = np.ogrid[0:size, 0:size]
        occupied = occupied | ((xx - blob[0]) ** 2 + (yy - blob[1]) ** 2 <= px(size, 9) ** 2)
        empty = free_spot(rng, occupied, px(size, 9), size, x_range=between)
        if empty is None:
            continue
        points = [lure, blob, empty]
        rng.shuffle(points)
        points.insert(gold, answer)
        if far_apart(points, px(size, 12)):
            break
    draw_ring(ImageDraw.Draw(first), *ref, MARKERS["REF"], size)
    for label, (x, y) in zip("ABCD", points):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"A reference point {marker_legend(['REF'])} is circled on the tool in the first image; four "
                        f"points are circled on the second image: {marker_legend(list('ABCD'))}. Which point "
                        f"serves the same function as the reference point?",
               sub_task="Functional_Correspondence", images=[first, second], choices=POINT_CHOICES, answer=gold,
               explanation=f"REF is on the {part} of a {heads[0]}; the answer is the {part} of a {heads[1]}.")


# ---- Semantic_Correspondence: two different animals of one kind ----

ANIMAL_PARTS = ("head", "tail tip", "front foot", "back foot")


def draw_animal(draw: ImageDraw.ImageDraw, pose: Pose, fill: Color, head_y: float, tail_y: float
                ) -> dict[str, Point]:
    """A four-legged animal facing local +x (mirrored poses face left); returns the point of each part."""
    x, y = pose((0, 0))
    draw.ellipse((x - 15 * pose.scale, y - 7 * pose.scale, x + 15 * pose.scale, y + 7 * pose.scale),
                 fill=fill, outline=OUTLINE)
    for leg_x in (-9.5, 9.5):
        draw.polygon(pose.polygon(_rect(leg_x - 2.5, 3, leg_x + 2.5, 16)), fill=fill, outline=OUTLINE)
    draw.polygon(pose.polygon(_bar((-13, -2), (-23, tail_y), 2)), fill=fill, outline=OUTLINE)
    hx, hy = pose((17, head_y))
    r = 7 * pose.scale
    draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=fill, outline=OUTLINE)
    return {"head": (hx, hy), "tail tip": pose((-21.5, tail_y + 1)), "front foot": pose((9.5, 13)),
            "back foot": pose((-9.5, 13))}


def _animal_image(rng: random.Random, color: str, size: int, mirror: bool) -> tuple[Image.Image, dict[str, Point]]:
    """An animal placed so that its leftmost part (the tail tip when it faces right, the head when it faces left)
    is its only part in the left half of the image (in 64 px units: the feet are 9.5 from the centre)."""
    scale, margin = rng.uniform(0.65, 0.75), 1.5
    leftmost, right_extent = (17, 23.5) if mirror else (21.5, 24)
    centre = rng.uniform(32 + margin + 9.5 * scale, min(32 - margin + leftmost * scale, 63 - right_extent * scale))
    pose = Pose(centre * size / 64, size / 2 + rng.uniform(-2, 2) * size / 64, size / 64 * scale, mirror=mirror)
    image, draw = canvas(size, BACKGROUND)
    parts = draw_animal(draw, pose, COLORS[color], head_y=rng.uniform(-11, -7), tail_y=rng.uniform(-14, -6))
    return image, parts


def semantic_correspondence(rng: random.Random, gold: int, size: int) -> Row:
    """REF on the leftmost part of an animal (the tail tip when it faces right, the head when it faces left); A-D
    on four parts of another animal (other colour and size) facing the same way, so the match is the one point
    in the left half of the image."""
    colors = rng.sample(PLAIN_COLORS, 2)
    mirror = rng.random() < 0.5
    part = "head" if mirror else "tail tip"
    first, first_parts = _animal_image(rng, colors[0], size, mirror)
    second, parts = _animal_image(rng, colors[1], size, mirror)
    others = [p for p in ANIMAL_PARTS if p != part]
    rng.shuffle(others)
    order = others[:gold] + [part] + others[gold:]
    draw_ring(ImageDraw.Draw(first), *first_parts[part], MARKERS["REF"], size)
    draw = ImageDraw.Draw(second)
    for label, name in zip("ABCD", order):
        draw_ring(draw, *parts[name], MARKERS[label], size)
    return Row(question=f"A reference point {marker_legend(['REF'])} is circled on the animal in the first image; "
                        f"four points are circled on the animal in the second image: "
                        f"{marker_legend(list('ABCD'))}. Which point corresponds to the reference point?",
               sub_task="Semantic_Correspondence", images=[first, second], choices=POINT_CHOICES, answer=gold,
               explanation=f"REF is on the {part}; the animals differ in colour, size and facing.")
