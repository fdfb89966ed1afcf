"""Drawing one scene of the procedural world: a cluttered background and 1-5 layered objects.

Everything is a function of a numpy Generator, so a scene is reproducible from its seed. Object
masks are drawn at 4x resolution and box-filtered down for soft edges; objects are composited in
order, so later objects partly occlude earlier ones (each keeps at least MIN_VISIBLE of its area).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from sigrl.data.world_vocab import COLOURS, SIZES, TEXTURES, WorldObject

SUPERSAMPLE = 4
MIN_VISIBLE = 0.5
COUNT_PROBS = (0.25, 0.2, 0.2, 0.2, 0.15)  # P(1..5 objects)
_PLACEMENT_TRIES = 25


def _rotate(points: list[tuple[float, float]], angle: float, c: float) -> list[tuple[float, float]]:
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(c + x * ca - y * sa, c + x * sa + y * ca) for x, y in points]


def _star(r: float) -> list[tuple[float, float]]:
    return [
        ((r if k % 2 == 0 else 0.45 * r) * math.cos(math.pi * k / 5 - math.pi / 2),
         (r if k % 2 == 0 else 0.45 * r) * math.sin(math.pi * k / 5 - math.pi / 2))
        for k in range(10)
    ]


def _cross(r: float) -> list[tuple[float, float]]:
    a, b = 0.32 * r, 0.95 * r
    return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int) -> None:
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)


def shape_mask(shape: str, radius: float, angle: float) -> np.ndarray:
    """Soft mask [h, w] float32 in [0, 1] of one shape, in a square box of side ~2*radius."""
    side = int(math.ceil(2 * radius)) + 2
    big, c, r = side * SUPERSAMPLE, side * SUPERSAMPLE / 2, radius * SUPERSAMPLE
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        _ellipse(draw, c, c, r, 255)
    elif shape == "ring":
        _ellipse(draw, c, c, r, 255)
        _ellipse(draw, c, c, 0.55 * r, 0)
    elif shape == "crescent":
        _ellipse(draw, c, c, r, 255)
        (ox, oy), = _rotate([(0.5 * r, 0.0)], angle, 0.0)
        _ellipse(draw, c + ox, c + oy, 0.85 * r, 0)
    elif shape == "square":
        draw.polygon(_rotate([(-0.8 * r, -0.8 * r), (0.8 * r, -0.8 * r), (0.8 * r, 0.8 * r), (-0.8 * r, 0.8 * r)], angle, c), fill=255)
    elif shape == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a) + 0.15 * r) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        draw.polygon(_rotate(pts, angle, c), fill=255)
    elif shape == "star":
        draw.polygon(_rotate(_star(r), angle, c), fill=255)
    elif shape == "cross":
        draw.polygon(_rotate(_cross(r), angle, c), fill=255)
    elif shape == "heart":
        lobes = _rotate([(-0.45 * r, -0.3 * r), (0.45 * r, -0.3 * r)], angle, c)
        for lx, ly in lobes:
            _ellipse(draw, lx, ly, 0.5 * r, 255)
        draw.polygon(_rotate([(-0.93 * r, -0.12 * r), (0.93 * r, -0.12 * r), (0.0, 0.9 * r)], angle, c), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    small = img.resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Clutter [size, size, 3] float32 in 0..255: a muted gradient, blotches and distractor strokes."""
    ends = rng.uniform(60, 190, size=(2, 3)) * rng.uniform(0.6, 1.0)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * t[None, :] + np.sin(theta) * t[:, None])
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    canvas = ends[0] + (ends[1] - ends[0]) * ramp[..., None]
    # low-frequency blotches: a coarse random grid upsampled smoothly
    coarse = rng.normal(0, 22, size=(5, 5, 3)).astype(np.float32)
    blotch = np.asarray(Image.fromarray(coarse[..., 0]).resize((size, size), Image.Resampling.BICUBIC))
    canvas = canvas + blotch[..., None] * rng.uniform(0.5, 1.0, size=3)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 7))):  # thin strokes in muted colours
        pts = [tuple(rng.uniform(-0.1, 1.1, 2) * size) for _ in range(int(rng.integers(2, 4)))]
        colour = tuple(int(v) for v in rng.uniform(40, 200, 3))
        draw.line(pts, fill=colour, width=int(rng.integers(1, 3)))
    return np.asarray(img, dtype=np.float32)


def _object_paint(obj: WorldObject, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Colour field [h, w, 3] for one object: jittered base colour, shading, optional stripes."""
    base = np.asarray(COLOURS[obj.colour], dtype=np.float32) + rng.uniform(-18, 18, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1.0 + 0.12 * ((xx / max(w - 1, 1)) - 0.5) * rng.choice((-1.0, 1.0))
    paint = base[None, None, :] * shade[..., None]
    if obj.texture == "striped":
        a = math.radians(obj.angle + 45.0)
        period = max(3.0, obj.radius / 2.2)
        stripes = np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > 0.2
        paint = np.where(stripes[..., None], paint * 0.55, paint)
    return paint


def _draw_objects(labels_pool: list[tuple[str, str]], n: int, size: int, rng: np.random.Generator) -> list[WorldObject]:
    objects = []
    for _ in range(n):
        colour, shape = labels_pool[int(rng.integers(len(labels_pool)))]
        size_name = list(SIZES)[int(rng.integers(len(SIZES)))]
        radius = float(rng.uniform(*SIZES[size_name])) * size
        objects.append(WorldObject(
            colour=colour, shape=shape, size=size_name, texture=TEXTURES[int(rng.random() < 0.3)],
            cx=0.0, cy=0.0, radius=radius, angle=float(rng.uniform(-20, 20)),
        ))
    # large objects first, so that smaller ones land on top and stay visible
    return sorted(objects, key=lambda o: -o.radius)


def render_scene(size: int, labels_pool: list[tuple[str, str]], rng: np.random.Generator) -> tuple[np.ndarray, list[WorldObject]]:
    """A scene: uint8 image [size, size, 3] and the objects that ended up in it (layout order)."""
    canvas = background(size, rng)
    n = int(rng.choice(len(COUNT_PROBS), p=COUNT_PROBS)) + 1
    coverage: list[np.ndarray] = []  # per placed object: its full-resolution boolean area
    placed: list[WorldObject] = []
    for obj in _draw_objects(labels_pool, n, size, rng):
        mask = shape_mask(obj.shape, obj.radius, obj.angle)
        side = mask.shape[0]
        parts = list(zip(_visible_parts(coverage), (c.sum() for c in coverage)))
        for _ in range(_PLACEMENT_TRIES):
            x0 = int(rng.integers(0, size - side + 1))
            y0 = int(rng.integers(0, size - side + 1))
            full = np.zeros((size, size), dtype=bool)
            full[y0:y0 + side, x0:x0 + side] = mask > 0.5
            if all((part & ~full).sum() >= MIN_VISIBLE * area for part, area in parts):
                break
        else:
            continue  # no room: drop this object rather than hide an earlier one
        paint = _object_paint(obj, side, side, rng)
        region = canvas[y0:y0 + side, x0:x0 + side]
        region[...] = region * (1.0 - mask[..., None]) + paint * mask[..., None]
        coverage.append(full)
        placed.append(_with_position(obj, x0 + side / 2, y0 + side / 2))
    visible = _visibility(coverage)
    placed = [_with_position(o, o.cx, o.cy, v) for o, v in zip(placed, visible)]
    noisy = canvas + rng.normal(0, rng.uniform(3, 12), size=canvas.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8), placed


def _visible_parts(coverage: list[np.ndarray]) -> list[np.ndarray]:
    """For each placed object, its area not covered by objects placed after it."""
    out = []
    for i, cov in enumerate(coverage):
        part = cov.copy()
        for later in coverage[i + 1:]:
            part &= ~later
        out.append(part)
    return out


def _visibility(coverage: list[np.ndarray]) -> list[float]:
    return [float(p.sum()) / max(float(c.sum()), 1.0) for p, c in zip(_visible_parts(coverage), coverage)]


def _with_position(obj: WorldObject, cx: float, cy: float, visible: float = 1.0) -> WorldObject:
    return WorldObject(obj.colour, obj.shape, obj.size, obj.texture, cx, cy, obj.radius, obj.angle, round(visible, 3))

