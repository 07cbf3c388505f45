"""Drawing primitives shared by every synthetic generator: colours, shapes, textures, markers and scenes.

Everything is sized for a tiny VLM that sees a 64 px image as a 4x4 grid of 16 px patches: objects have a
radius of 8 px or more, strokes are thick and colours saturated. Lengths are given for a 64 px image and
scaled by `px` to other sizes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]

COLORS: dict[str, Color] = {
    "red": (225, 25, 25),
    "green": (20, 170, 40),
    "blue": (30, 70, 230),
    "yellow": (245, 215, 0),
    "purple": (130, 40, 190),
    "orange": (250, 130, 0),
    "cyan": (0, 205, 215),
    "magenta": (255, 0, 220),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND: Color = (165, 165, 165)
OUTLINE: Color = (40, 40, 40)

# Labelled points and boxes are coloured markers (text glyphs are unreadable at 64 px); questions name the code.
MARKERS: dict[str, str] = {"A": "red", "B": "blue", "C": "green", "D": "yellow", "REF": "magenta"}
# Object colours that never clash with a marker colour, for images that carry markers.
PLAIN_COLORS = ("purple", "orange", "cyan", "white", "black")
OBJECT_COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan")

TEXTURES = ("horizontal stripes", "vertical stripes", "diagonal stripes", "checks", "dots")
PALETTES: tuple[tuple[Color, Color], ...] = (
    ((225, 25, 25), (250, 215, 60)),    # red / gold
    ((30, 70, 230), (235, 235, 235)),   # blue / white
    ((20, 150, 40), (20, 20, 20)),      # green / black
    ((130, 40, 190), (0, 205, 215)),    # purple / cyan
)


def px(size: int, length: float) -> int:
    """A length given for a 64 px image, scaled to `size` (at least 1 px)."""
    return max(1, round(length * size / 64))


def canvas(size: int, color: Color = BACKGROUND) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (size, size), color)
    return image, ImageDraw.Draw(image)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float,
               fill: Color | int, outline: Color | int | None = None) -> None:
    """A filled circle, square or triangle of 'radius' r centred on (x, y)."""
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill, outline=outline)
    elif shape == "square":
        h = 0.88 * r
        draw.rectangle((x - h, y - h, x + h, y + h), fill=fill, outline=outline)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + 1.1 * r, y + 0.85 * r), (x - 1.1 * r, y + 0.85 * r)],
                     fill=fill, outline=outline)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def shape_box(shape: str, x: float, y: float, r: float) -> tuple[float, float, float, float]:
    """The tight bounding box (x0, y0, x1, y1) of a shape drawn by `draw_shape`."""
    if shape == "square":
        h = 0.88 * r
        return x - h, y - h, x + h, y + h
    if shape == "triangle":
        return x - 1.1 * r, y - r, x + 1.1 * r, y + 0.85 * r
    return x - r, y - r, x + r, y + r


def draw_ring(draw: ImageDraw.ImageDraw, x: float, y: float, color: str, size: int) -> None:
    """A circled point (BLINK's visual prompt): a thick coloured ring with a black rim; its hole shows the surface."""
    outer, inner = px(size, 6), px(size, 5)
    draw.ellipse((x - outer, y - outer, x + outer, y + outer), outline=(0, 0, 0), width=px(size, 1))
    draw.ellipse((x - inner, y - inner, x + inner, y + inner), outline=COLORS[color], width=px(size, 2))


def draw_box(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], color: str, size: int) -> None:
    draw.rectangle(box, outline=COLORS[color], width=px(size, 2))


def marker_legend(labels: list[str]) -> str:
    """'A (red), B (blue)' for the given marker labels."""
    return ", ".join(f"{label} ({MARKERS[label]})" for label in labels)


def grid_positions(rng: random.Random, n: int, size: int, r: float) -> list[tuple[float, float]]:
    """n centres in distinct cells of a jittered grid, so objects of radius r never overlap."""
    k = max(1, int(size // (2 * r + px(size, 4))))
    if n > k * k:
        raise ValueError(f"{n} objects of radius {r} do not fit a {size} px image (at most {k * k})")
    cell = size / k
    jitter = max(0.0, cell / 2 - r - 1)
    return [((c % k + 0.5) * cell + rng.uniform(-jitter, jitter),
             (c // k + 0.5) * cell + rng.uniform(-jitter, jitter)) for c in rng.sample(range(k * k), n)]


def free_positions(rng: random.Random, radii: list[float], size: int, gap: float = 2.0, tries: int = 200,
                   avoid: tuple[tuple[float, float, float], ...] = ()) -> list[tuple[float, float]] | None:
    """Random centres, one circle after the other, for circles of the given radii inside the image, apart from
    each other and from the `avoid` circles (x, y, r) by `gap`; None when one of them finds no room."""
    placed = list(avoid)
    for r in radii:
        for _ in range(tries):
            x, y = rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size - r - 1)
            if all((x - cx) ** 2 + (y - cy) ** 2 >= (r + cr + gap) ** 2 for cx, cy, cr in placed):
                placed.append((x, y, r))
                break
        else:
            return None
    return [(x, y) for x, y, _ in placed[len(avoid):]]


def place_pair(rng: random.Random, radii: list[float], size: int, axis: str,
               sign: int | None = None) -> list[tuple[float, float]]:
    """Free centres of two circles apart along `axis` ("x" or "y") by at least the sum of their radii and at most
    half that across; with `sign`, the first lies that way along x from the second (-1: left of it)."""
    while True:
        centres = free_positions(rng, radii, size)
        if centres is None:
            continue
        dx, dy = (centres[0][k] - centres[1][k] for k in (0, 1))
        if axis == "x":
            along, across = (abs(dx) if sign is None else dx * sign), abs(dy)
        else:
            along, across = abs(dy), abs(dx)
        if along >= radii[0] + radii[1] and across <= 0.5 * along:
            return centres


Shape = tuple[str, str, float, float, float]   # shape, colour name, x, y, radius


def random_shapes(rng: random.Random, size: int, n: int, radius: tuple[float, float] = (9, 13),
                  colors: tuple[str, ...] = OBJECT_COLORS,
                  avoid: tuple[tuple[float, float, float], ...] = ()) -> list[Shape]:
    """n non-overlapping shapes of random kind and colour, clear of the `avoid` circles (x, y, r)."""
    while True:
        radii = [px(size, rng.uniform(*radius)) for _ in range(n)]
        centres = free_positions(rng, radii, size, avoid=avoid)
        if centres is not None:
            return [(rng.choice(SHAPES), rng.choice(colors), x, y, r) for (x, y), r in zip(centres, radii)]


def paint(image: Image.Image, shapes: list[Shape], fill: Color | None = None) -> Image.Image:
    """Draw shapes on (a copy of) an image, in their own colours or all in `fill`."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    for shape, color, x, y, r in shapes:
        draw_shape(draw, shape, x, y, r, fill or COLORS[color], OUTLINE)
    return image


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size]


def texture(size: int, kind: str, colors: tuple[Color, Color], period: float = 8) -> Image.Image:
    """A full image of a two-colour texture: stripes (3 orientations), checks or dots."""
    yy, xx = _grid(size)
    p = px(size, period)
    half = max(1, p // 2)
    if kind == "horizontal stripes":
        mask = (yy // half) % 2 == 0
    elif kind == "vertical stripes":
        mask = (xx // half) % 2 == 0
    elif kind == "diagonal stripes":
        mask = ((xx + yy) // half) % 2 == 0
    elif kind == "checks":
        mask = (xx // half + yy // half) % 2 == 0
    elif kind == "dots":
        mask = (xx % p - p / 2) ** 2 + (yy % p - p / 2) ** 2 <= (0.3 * p) ** 2
    else:
        raise ValueError(f"unknown texture {kind!r}; expected one of {TEXTURES}")
    pixels = np.where(mask[..., None], np.array(colors[0], np.uint8), np.array(colors[1], np.uint8))
    return Image.fromarray(pixels, "RGB")


def gradient(size: int, top: Color, bottom: Color) -> Image.Image:
    """A vertical linear gradient: the smooth, 'photographic' background."""
    t = np.linspace(0.0, 1.0, size)[:, None]
    column = ((1 - t) * np.array(top, float) + t * np.array(bottom, float)).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(column[:, None], (size, size, 3))), "RGB")


def random_color(rng: random.Random) -> Color:
    """A random mid-saturated colour (for backgrounds and photos)."""
    return tuple(rng.randrange(40, 230) for _ in range(3))


# ---- scenes: objects standing on a ground plane, seen by a camera that can move sideways ----

@dataclass(frozen=True)
class Thing:
    x: float      # lateral world position (about -1 .. 1)
    z: float      # depth: 1 = nearest, 1.75 = farthest
    shape: str
    color: str


SKY: Color = (185, 205, 235)
GROUND: Color = (150, 130, 100)


def horizon(size: int) -> float:
    return 0.1 * size


def project(thing: Thing, size: int, cam_x: float = 0.0) -> tuple[float, float, float]:
    """Screen centre and radius of a thing: size, height in the image and parallax all shrink with depth."""
    r = 14 * size / 64 / thing.z
    x = size / 2 + (thing.x - cam_x) * 0.5 * size / thing.z
    base = horizon(size) + 0.75 * size / thing.z
    return x, base - r, r


def render_scene(things: list[Thing], size: int, cam_x: float = 0.0) -> tuple[Image.Image, np.ndarray]:
    """Draw things far to near (near ones occlude); also return an id map (thing index + 1, 0 = background)."""
    image, draw = canvas(size, GROUND)
    draw.rectangle((0, 0, size, horizon(size)), fill=SKY)
    ids = Image.new("L", (size, size), 0)
    id_draw = ImageDraw.Draw(ids)
    for i in sorted(range(len(things)), key=lambda i: -things[i].z):
        x, y, r = project(things[i], size, cam_x)
        draw_shape(draw, things[i].shape, x, y, r, COLORS[things[i].color], OUTLINE)
        draw_shape(id_draw, things[i].shape, x, y, r, i + 1, i + 1)
    return image, np.asarray(ids)


def visible_points(ids: np.ndarray, n: int, size: int) -> list[tuple[int, int] | None]:
    """For each of n things, a point with a (2 px) margin of its own visible pixels all round, the one nearest
    the centroid of such points; None for a thing too hidden to carry a marker."""
    d = px(size, 2)
    h, w = ids.shape
    padded = np.pad(ids.astype(np.int16), d, constant_values=-1)
    rows_same = np.ones((h + 2 * d, w), bool)
    for dx in range(2 * d + 1):
        rows_same &= padded[:, dx:dx + w] == padded[:, d:d + w]
    inner = np.ones((h, w), bool)
    for dy in range(2 * d + 1):
        inner &= rows_same[dy:dy + h] & (padded[dy:dy + h, d:d + w] == ids)
    ys, xs = np.nonzero(inner & (ids > 0))
    labels = ids[ys, xs]
    points: list[tuple[int, int] | None] = []
    for k in range(n):
        mine = labels == k + 1
        if mine.sum() < d * d:
            points.append(None)
            continue
        kx, ky = xs[mine], ys[mine]
        j = int(np.argmin((kx - kx.mean()) ** 2 + (ky - ky.mean()) ** 2))
        points.append((int(kx[j]), int(ky[j])))
    return points


def random_things(rng: random.Random, n: int, colors: tuple[str, ...] = PLAIN_COLORS,
                  x_range: float = 0.9) -> list[Thing]:
    """n things with distinct (shape, colour), spread over n jittered lateral slots, at depths in [1, 1.75]
    (screen radius 14 px down to 8 px)."""
    looks = rng.sample([(s, c) for s in SHAPES for c in colors], n)
    slot = 2 * x_range / n
    return [Thing(-x_range + (k + 0.5 + rng.uniform(-0.3, 0.3)) * slot, rng.uniform(1.0, 1.75), s, c)
            for k, (s, c) in enumerate(looks)]


def leftmost_by(point: tuple[float, float], others: list[tuple[float, float]], gap: float) -> bool:
    """Whether `point` lies at least `gap` px left of every one of `others`."""
    return all(point[0] + gap <= q[0] for q in others)


def far_apart(points: list[tuple[float, float]], distance: float) -> bool:
    return all((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 >= distance ** 2
               for i, a in enumerate(points) for b in points[i + 1:])


def free_spot(rng: random.Random, occupied: np.ndarray, clearance: float, size: int, tries: int = 100,
              x_range: tuple[float, float] | None = None) -> tuple[int, int] | None:
    """A random point at least `clearance` px from every True pixel of `occupied` and from the border (and with
    its x within `x_range` when given)."""
    ys, xs = np.nonzero(occupied)
    lo, hi = clearance, size - 1 - clearance
    if x_range is not None:
        lo, hi = max(lo, x_range[0]), min(hi, x_range[1])
    if lo > hi:
        return None
    for _ in range(tries):
        x, y = rng.uniform(lo, hi), rng.uniform(clearance, size - 1 - clearance)
        if len(xs) == 0 or ((xs - x) ** 2 + (ys - y) ** 2).min() >= clearance ** 2:
            return round(x), round(y)
    return None
