"""Image-level tasks that compare whole images: Art_Style, Visual_Similarity, Forensic_Detection, Jigsaw."""
from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from transfer.data.blink import Row
from transfer.embedded.suite.draw import (
    OBJECT_COLORS,
    PALETTES,
    SHAPES,
    TEXTURES,
    Color,
    Shape,
    canvas,
    gradient,
    paint,
    px,
    random_color,
    random_shapes,
    texture,
)

CANDIDATE_CHOICES = ["the second image", "the third image"]
ORDINAL_CHOICES = ["the first image", "the second image", "the third image", "the fourth image"]

# ---- Art_Style: same texture and palette, different content ----

STYLES = [(t, p) for t in TEXTURES for p in range(len(PALETTES))]
CONTENT_FILL: Color = (128, 128, 128)


def art_style(rng: random.Random, gold: int, size: int) -> Row:
    """A reference 'painting' (texture + palette, grey content shapes); the match shares its style with new
    content, the lure has another palette (and often another texture) and often the reference's very content."""
    style = rng.choice(STYLES)
    other = (rng.choice(TEXTURES), rng.choice([p for p in range(len(PALETTES)) if p != style[1]]))
    content = random_shapes(rng, size, rng.randint(1, 2), (10, 14))
    lure_content = content if rng.random() < 0.5 else random_shapes(rng, size, rng.randint(1, 2), (10, 14))

    def painting(style: tuple[str, int], shapes: list[Shape]) -> Image.Image:
        return paint(texture(size, style[0], PALETTES[style[1]]), shapes, CONTENT_FILL)

    candidates = [painting(style, random_shapes(rng, size, rng.randint(1, 2), (10, 14))),
                  painting(other, lure_content)]
    if gold == 1:
        candidates.reverse()
    return Row(question="Use the first image as the reference image. Which one of the second or the third image "
                        "shares the same style as the reference image?",
               sub_task="Art_Style", images=[painting(style, content), *candidates], choices=CANDIDATE_CHOICES,
               answer=gold, explanation=f"Reference style: {style[0]}, palette {style[1]}; "
                                        f"the other candidate: {other[0]}, palette {other[1]}.")


# ---- Visual_Similarity: a near-duplicate against an image with several changes ----

BACKDROPS: tuple[Color, ...] = ((235, 235, 235), (90, 140, 225), (235, 165, 70), (100, 190, 100), (70, 70, 70))
CHANGES = ("colour", "shape", "layout")


def visual_similarity(rng: random.Random, gold: int, size: int, far_changes: int = 2) -> Row:
    """The close candidate moves every shape by a few pixels; the far one changes the background and makes
    `far_changes` - 1 more of: one shape's colour, one shape's kind, mirrored layout."""
    backdrop = rng.choice(BACKDROPS)
    shapes = random_shapes(rng, size, rng.randint(2, 3))
    jitter = px(size, 3)
    close = [(s, c, x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter), r)
             for s, c, x, y, r in shapes]
    far, far_backdrop = list(shapes), backdrop
    changes = ["background", *rng.sample(CHANGES, far_changes - 1)]
    for change in changes:
        k = rng.randrange(len(far))
        s, c, x, y, r = far[k]
        if change == "background":
            far_backdrop = rng.choice([b for b in BACKDROPS if b != backdrop])
        elif change == "colour":
            far[k] = (s, rng.choice([o for o in OBJECT_COLORS if o != c]), x, y, r)
        elif change == "shape":
            far[k] = (rng.choice([o for o in SHAPES if o != s]), c, x, y, r)
        else:
            far = [(s, c, size - x, y, r) for s, c, x, y, r in far]

    def render(color: Color, items: list[Shape]) -> Image.Image:
        return paint(canvas(size, color)[0], items)

    candidates = [render(backdrop, close), render(far_backdrop, far)]
    if gold == 1:
        candidates.reverse()
    return Row(question="Given three similar but different images, take the first image as reference. Which one "
                        "of the latter two images is most similar to the first one?",
               sub_task="Visual_Similarity", images=[render(backdrop, shapes), *candidates],
               choices=CANDIDATE_CHOICES, answer=gold,
               explanation=f"The other candidate changes: {', '.join(changes)}.")


# ---- Forensic_Detection: one real 'photograph' (lens vignetting, sensor grain) among three clean renders ----

def photo(rng: random.Random, size: int) -> Image.Image:
    """A smooth-gradient scene with a few shapes: what the generated images look like."""
    background = gradient(size, random_color(rng), random_color(rng))
    return paint(background, random_shapes(rng, size, rng.randint(2, 3), (8, 12)))


def add_grain(rng: random.Random, image: Image.Image, strength: float = 20) -> Image.Image:
    """Sensor grain: independent noise on every pixel and channel, up to `strength` levels either way."""
    noise = np.frombuffer(rng.randbytes(image.width * image.height * 3), np.uint8).reshape(image.height, image.width, 3)
    pixels = np.asarray(image).astype(float) + (noise.astype(float) / 255 * 2 - 1) * strength
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8), "RGB")


def add_vignette(image: Image.Image, falloff: float = 0.75) -> Image.Image:
    """Lens vignetting: brightness falls off with the squared distance from the centre, by `falloff` at the
    corners."""
    yy, xx = np.mgrid[0:image.height, 0:image.width]
    r2 = (xx / (image.width - 1) - 0.5) ** 2 + (yy / (image.height - 1) - 0.5) ** 2
    pixels = np.asarray(image).astype(float) * (1 - falloff * r2 / 0.5)[..., None]
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8), "RGB")


def forensic_detection(rng: random.Random, gold: int, size: int) -> Row:
    """Four scenes of the same kind; only the gold one was taken through a lens onto a sensor (darkened corners,
    grain), the three generated images are clean. No family learned grain alone in 150 LoRA steps (+-45 levels
    in the grids, up to +-90 in a qwen probe: frozen vision towers trained on colours and positions); vignetting
    is learned."""
    images = [photo(rng, size) for _ in range(4)]
    images[gold] = add_grain(rng, add_vignette(images[gold]))
    return Row(question="Which image is most likely to be a real photograph?", sub_task="Forensic_Detection",
               images=images, choices=ORDINAL_CHOICES, answer=gold,
               explanation=f"Image {gold + 1} has lens vignetting and sensor grain; the others are clean renders.")


# ---- Jigsaw: which piece fills the missing lower-right quarter ----

def diagonal_gradient(size: int, start: Color, end: Color) -> Image.Image:
    """A linear gradient from the top-left corner (`start`) to the bottom-right corner (`end`)."""
    yy, xx = np.mgrid[0:size, 0:size]
    t = ((xx + yy) / (2 * (size - 1)))[..., None]
    pixels = (1 - t) * np.array(start, float) + t * np.array(end, float)
    return Image.fromarray(pixels.round().astype(np.uint8), "RGB")


def jigsaw(rng: random.Random, gold: int, size: int) -> Row:
    """The first image misses its lower-right quarter (black). The scene's background runs from one colour at the
    top-left to another at the bottom-right; one shape sits in the top-left quarter, another crosses the centre
    into the missing quarter. The answer is that quarter; the lure is the top-left quarter, a piece of what is
    still visible (so it looks more like the first image than the answer does); both enlarged."""
    start, end = random_color(rng), random_color(rng)
    while sum((a - b) ** 2 for a, b in zip(start, end)) < 120 ** 2:
        end = random_color(rng)
    background = diagonal_gradient(size, start, end)
    r = px(size, rng.uniform(11, 14))
    centre = (size / 2 + rng.uniform(2, 6) * size / 64, size / 2 + rng.uniform(2, 6) * size / 64)
    corner = (size / 4 + rng.uniform(-2, 2) * size / 64, size / 4 + rng.uniform(-2, 2) * size / 64)
    color, other = rng.sample(OBJECT_COLORS, 2)
    full = paint(background, [(rng.choice(SHAPES), other, *corner, px(size, 7)),
                              (rng.choice(SHAPES), color, *centre, r)])
    half = size // 2
    puzzle = full.copy()
    ImageDraw.Draw(puzzle).rectangle((half, half, size - 1, size - 1), fill=(0, 0, 0))
    pieces = [full.crop(box).resize((size, size), Image.Resampling.NEAREST)
              for box in ((half, half, size, size), (0, 0, half, half))]
    if gold == 1:
        pieces.reverse()
    return Row(question="Given the first image with the lower right corner missing, can you tell which one of the "
                        "second image or the third image is the missing part?",
               sub_task="Jigsaw", images=[puzzle, *pieces], choices=CANDIDATE_CHOICES, answer=gold,
               explanation=f"The missing corner holds the end of the background gradient and part of a {color} "
                           f"shape; the other piece is the visible top-left corner with its {other} shape.")
