"""Pixel- and view-level tasks on rendered scenes: Relative_Depth, Multi-view_Reasoning, Visual_Correspondence,
Relative_Reflectance."""
from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from transfer.data.blink import Row
from transfer.embedded.suite.draw import (
    MARKERS,
    OBJECT_COLORS,
    Thing,
    draw_ring,
    far_apart,
    marker_legend,
    project,
    px,
    random_things,
    render_scene,
    visible_points,
)

POINT_CHOICES = ["Point A", "Point B", "Point C", "Point D"]


def relative_depth(rng: random.Random, gold: int, size: int, min_gap: float = 0.3) -> Row:
    """Two circled points on objects at depths at least `min_gap` apart (size, height, occlusion cues); the
    nearer point lies in the lower half of the image and the farther one in the upper half, as for objects
    standing on a ground plane."""
    while True:
        things = random_things(rng, rng.randint(3, 4))
        image, ids = render_scene(things, size)
        points = visible_points(ids, len(things), size)
        pairs = [(i, j) for i in range(len(things)) for j in range(len(things))
                 if things[j].z - things[i].z >= min_gap and None not in (points[i], points[j])
                 and far_apart([points[i], points[j]], px(size, 14))
                 and points[j][1] < size / 2 < points[i][1]]   # on the ground plane: nearer is lower
        if pairs:
            break
    i, j = rng.choice(pairs)   # i is the nearer one
    points = [points[i], points[j]]
    depths = [things[i].z, things[j].z]
    if gold == 1:
        points.reverse()
        depths.reverse()
    draw = ImageDraw.Draw(image)
    for label, (x, y) in zip("AB", points):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"Two points are circled: {marker_legend(['A', 'B'])}. Which point is closer to the camera?",
               sub_task="Relative_Depth", images=[image], choices=["A", "B"], answer=gold,
               explanation=f"Depth of A {depths[0]:.2f}, of B {depths[1]:.2f}.")


def _in_view(things: list[Thing], size: int, cams: tuple[float, ...]) -> bool:
    return all(0 <= project(t, size, cam)[0] <= size for t in things for cam in cams)


def multi_view_reasoning(rng: random.Random, gold: int, size: int) -> Row:
    """Two renders of one scene, the camera moved left (gold 0) or right (gold 1): objects shift the other way,
    near ones more."""
    step = rng.uniform(0.4, 0.6) * (-1 if gold == 0 else 1)
    cams = (-step / 2, step / 2)
    while True:
        things = random_things(rng, rng.randint(3, 4), OBJECT_COLORS, x_range=0.8)
        if _in_view(things, size, cams):
            break
    images = [render_scene(things, size, cam)[0] for cam in cams]
    return Row(question="The first image is from the beginning of the video and the second image is from the end. "
                        "Is the camera moving left or right when shooting the video?",
               sub_task="Multi-view_Reasoning", images=images, choices=["left", "right"], answer=gold,
               explanation=f"The camera moved {'left' if gold == 0 else 'right'} by {abs(step):.2f}.")


def visual_correspondence(rng: random.Random, gold: int, size: int) -> Row:
    """A circled point REF in one view; four circled points in a slightly shifted view; which is the same point?
    REF marks an object in the left half of the image, and the camera moves little, so the match is the one point
    in the left half: the other three lie on objects in the right half."""
    margin = px(size, 3)
    while True:
        things = random_things(rng, 5)
        step = rng.uniform(0.05, 0.12) * rng.choice([-1, 1])
        cams = (-step / 2, step / 2)
        (first, ids1), (second, ids2) = (render_scene(things, size, cam) for cam in cams)
        seen = visible_points(ids2, len(things), size)
        targets = []
        for k, ref in enumerate(visible_points(ids1, len(things), size)):
            if ref is None:
                continue
            shift = project(things[k], size, cams[1])[0] - project(things[k], size, cams[0])[0]
            match = (round(ref[0] + shift), ref[1])
            if (0 <= match[0] < size and ids2[match[1], match[0]] == k + 1   # not occluded or out of view
                    and max(ref[0], match[0]) < size / 2 - margin):
                targets.append((k, ref, match))
        if not targets:
            continue
        target, ref, match = rng.choice(targets)
        points = [p for k, p in enumerate(seen) if k != target and p is not None and p[0] > size / 2 + margin]
        if len(points) < 3:
            continue
        points = rng.sample(points, 3)
        points.insert(gold, match)
        if far_apart(points, px(size, 12)):
            break
    draw_ring(ImageDraw.Draw(first), *ref, MARKERS["REF"], size)
    draw = ImageDraw.Draw(second)
    for label, (x, y) in zip("ABCD", points):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"A point {marker_legend(['REF'])} is circled on the first image. The camera moves for "
                        f"the second image, where four points are circled: {marker_legend(list('ABCD'))}. "
                        f"Which point on the second image corresponds to the point in the first image?",
               sub_task="Visual_Correspondence", images=[first, second], choices=POINT_CHOICES, answer=gold,
               explanation=f"REF is on the {things[target].color} {things[target].shape}.")


REFLECTANCE_CHOICES = ["A is darker", "B is darker", "About the same"]
ALBEDOS = (0.45, 0.55, 0.65)   # close enough that the light gradient can swap which looks darker


def relative_reflectance(rng: random.Random, gold: int, size: int, light_falloff: float = 0.2) -> Row:
    """Two circled points on flat surfaces (wall panels high up and a floor band low down) under a smooth light
    gradient: which surface is darker, or are they about the same? Gold 0: A darker, 1: B darker, 2: same albedo.
    When one surface is darker it is the floor, so the darker point is always the lower one in the image; two
    surfaces of the same albedo are two walls, at about the same height. The albedos differ so little that the
    light gradient can make the darker surface look the lighter one: the height of the points is the safer cue."""
    panels = _panels(rng, size)
    floor = len(panels) - 1
    albedo = [rng.choice(ALBEDOS) for _ in panels]
    if gold == 2:
        a, b = rng.sample(range(floor), 2)
        albedo[b] = albedo[a]
    else:
        wall = rng.randrange(floor)
        albedo[floor], albedo[wall] = sorted(rng.sample(ALBEDOS, 2))
        a, b = (floor, wall) if gold == 0 else (wall, floor)
    pixels = np.zeros((size, size, 3))
    for (x0, y0, x1, y1), level in zip(panels, albedo):
        tint = np.array([rng.uniform(0.85, 1.0) for _ in range(3)])
        pixels[y0:y1, x0:x1] = 255 * level * tint
    ramp = 1 - light_falloff * np.linspace(0, 1, size)
    pixels *= (ramp if rng.random() < 0.5 else ramp[::-1])[None, :, None]
    image = Image.fromarray(pixels.round().astype(np.uint8), "RGB")
    margin = px(size, 8)
    while True:   # wall points in the upper 40 % of the image, floor points on the floor band
        points = [(rng.randint(x0 + margin, x1 - margin),
                   rng.randint(y0 + margin, y1 - margin) if k == floor else rng.randint(margin, round(0.4 * size)))
                  for k, (x0, y0, x1, y1) in ((a, panels[a]), (b, panels[b]))]
        if far_apart(points, px(size, 14)):
            break
    draw = ImageDraw.Draw(image)
    for (x, y), label in zip(points, "AB"):
        draw_ring(draw, x, y, MARKERS[label], size)
    return Row(question=f"Two points are circled: {marker_legend(['A', 'B'])}. Which point has darker surface "
                        f"color, or is the color about the same?",
               sub_task="Relative_Reflectance", images=[image], choices=REFLECTANCE_CHOICES, answer=gold,
               explanation=f"Surface albedo: A {albedo[a]}, B {albedo[b]}.")


def _panels(rng: random.Random, size: int) -> list[tuple[int, int, int, int]]:
    """Two or three wall panels side by side above a floor band: rectangles (x0, y0, x1, y1)."""
    floor = rng.randint(px(size, 38), px(size, 46))
    if rng.random() < 0.5:
        cuts = [rng.randint(px(size, 20), px(size, 44))]
    else:
        cuts = [rng.randint(px(size, 19), px(size, 23)), rng.randint(px(size, 41), px(size, 45))]
    edges = [0, *cuts, size]
    return [(x0, 0, x1, floor) for x0, x1 in zip(edges, edges[1:])] + [(0, floor, size, size)]
