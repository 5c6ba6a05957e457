"""Procedurally drawn images: the built-in demo's dataset and the tests' images, with nothing downloaded.

Each class is one drawable pattern. The patterns share primitives so that features learned on one
subset of classes help on another: filled and outlined versions of the same outline (circle/ring,
square/frame), the same bars at different angles (plus/x, stripes_h/stripes_v/stripes_d), and
textures that fill a square patch (checker, dots, stripes) like the filled square does. Every image
is ink on paper: a dark pattern of a random colour on a light background of random colours (flat,
gradient or blotchy), with a random size, position and small rotation, a few distractor specks and
pixel noise, so a small CNN learns the classes within a few hundred steps, but not from one pixel.
(Patterns of any colour on any background took a small MobileNet thousands of steps to tell apart.)

    write_shapes_dataset("/tmp/shapes", ["circle", "ring", "square"], train_per_class=50,
                         validation_per_class=10, image_size=64, seed=0)

writes /tmp/shapes/{train,validation}/<class>/<n>.png, an image folder `finetune --dataset` reads.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MANIFEST = "shapes.json"
SPLITS = ("train", "validation")
_SPLIT_STREAMS = {"train": 0, "validation": 1}
_FORMATS = {"png": ".png", "jpeg": ".jpg"}
_PAPER = (150, 256)  # background channel values: light colours
_INK = (0, 100)  # pattern channel values: dark colours, so every pattern stands out in brightness


def _polygon(cx: float, cy: float, radius: float, angles_deg: Sequence[float], rotation: float) -> list[tuple]:
    return [
        (cx + radius * math.cos(math.radians(a + rotation)), cy + radius * math.sin(math.radians(a + rotation)))
        for a in angles_deg
    ]


def _rotated_bars(cx: float, cy: float, half: float, thickness: float, angles_deg: Sequence[float]) -> list[list]:
    """One rectangle polygon per angle, each `2 * half` long and `thickness` wide, centred."""
    bars = []
    for angle in angles_deg:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        corners = [(-half, -thickness / 2), (half, -thickness / 2), (half, thickness / 2), (-half, thickness / 2)]
        bars.append([(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners])
    return bars


def _patch_mask(size: int, cx: float, cy: float, radius: float, rotation: float) -> Image.Image:
    """A rotated square patch (the region textures fill), as an L-mode mask."""
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(_polygon(cx, cy, radius * math.sqrt(2), (45, 135, 225, 315), rotation), fill=255)
    return mask


def _texture(size: int, kind: str, period: float, phase: float, rotation: float) -> np.ndarray:
    """A boolean [size, size] pattern: stripes at an angle, a checkerboard or a dot grid."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    u, v = xx * c + yy * s + phase, -xx * s + yy * c + phase
    if kind == "stripes":
        return (v / period) % 1.0 < 0.5
    if kind == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2) == 0
    # dots: a disc in each grid cell
    du, dv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
    return du * du + dv * dv < 0.09


class _Canvas:
    """Draws one pattern onto an RGB image with the geometry drawn for it."""

    def __init__(self, image: Image.Image, rng: np.random.Generator, colour: tuple[int, int, int]):
        self.image, self.rng, self.colour = image, rng, colour
        self.size = image.size[0]
        self.draw = ImageDraw.Draw(image)
        self.radius = self.size * rng.uniform(0.18, 0.34)
        margin = self.radius * 0.8
        self.cx = rng.uniform(margin, self.size - margin)
        self.cy = rng.uniform(margin, self.size - margin)
        self.rotation = rng.uniform(-15.0, 15.0)
        self.line = max(2.0, self.radius * rng.uniform(0.22, 0.35))

    def box(self, radius: float) -> tuple[float, float, float, float]:
        return (self.cx - radius, self.cy - radius, self.cx + radius, self.cy + radius)

    def fill_texture(self, kind: str, angle: float) -> None:
        period = self.size * self.rng.uniform(0.08, 0.14)
        pattern = _texture(self.size, kind, period, self.rng.uniform(0, period), angle + self.rotation)
        mask = np.asarray(_patch_mask(self.size, self.cx, self.cy, self.radius * 1.15, self.rotation)) > 0
        pixels = np.asarray(self.image).copy()
        pixels[pattern & mask] = self.colour
        self.image.paste(Image.fromarray(pixels))


def _circle(c: _Canvas) -> None:
    c.draw.ellipse(c.box(c.radius), fill=c.colour)


def _ring(c: _Canvas) -> None:
    c.draw.ellipse(c.box(c.radius), outline=c.colour, width=int(c.line * 0.6))


def _square(c: _Canvas) -> None:
    c.draw.polygon(_polygon(c.cx, c.cy, c.radius * 1.2, (45, 135, 225, 315), c.rotation), fill=c.colour)


def _frame(c: _Canvas) -> None:
    corners = _polygon(c.cx, c.cy, c.radius * 1.2, (45, 135, 225, 315), c.rotation)
    c.draw.line(corners + corners[:1], fill=c.colour, width=int(c.line * 0.6), joint="curve")


def _triangle(c: _Canvas) -> None:
    c.draw.polygon(_polygon(c.cx, c.cy, c.radius * 1.2, (-90, 30, 150), c.rotation), fill=c.colour)


def _bars(angles: Sequence[float]) -> Callable[[_Canvas], None]:
    def draw(c: _Canvas) -> None:
        for bar in _rotated_bars(c.cx, c.cy, c.radius * 1.1, c.line, [a + c.rotation for a in angles]):
            c.draw.polygon(bar, fill=c.colour)

    return draw


def _textured(kind: str, angle: float = 0.0) -> Callable[[_Canvas], None]:
    return lambda c: c.fill_texture(kind, angle)


_DRAWERS: dict[str, Callable[[_Canvas], None]] = {
    "circle": _circle,
    "ring": _ring,
    "square": _square,
    "frame": _frame,
    "triangle": _triangle,
    "plus": _bars((0, 90)),
    "x": _bars((45, 135)),
    "stripes_h": _textured("stripes", 0.0),
    "stripes_v": _textured("stripes", 90.0),
    "stripes_d": _textured("stripes", 45.0),
    "checker": _textured("checker"),
    "dots": _textured("dots"),
}
SHAPE_CLASSES: tuple[str, ...] = tuple(_DRAWERS)


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> np.ndarray:
    return rng.integers(low, high, size=3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A flat, gradient or blotchy light background, float [size, size, 3]."""
    base = _colour(rng, *_PAPER)
    kind = rng.integers(0, 3)
    pixels = np.broadcast_to(base, (size, size, 3)).copy()
    if kind == 1:  # linear gradient towards a second light colour in a random direction
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = ((xx * math.cos(angle) + yy * math.sin(angle)) % 1.0)[..., None]
        pixels = base * (1 - t) + _colour(rng, *_PAPER) * t
    elif kind == 2:  # low-frequency blotches: upsampled coarse noise
        coarse = rng.normal(0, 25, size=(4, 4, 3)).astype(np.float32)
        blotches = np.asarray(Image.fromarray(coarse[..., 0]).resize((size, size), Image.BILINEAR))
        pixels = pixels + blotches[..., None]
    return np.clip(pixels, 0, 255)


def draw_shape(name: str, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """One image (uint8 [image_size, image_size, 3]) of the class `name`, drawn with `rng`."""
    if name not in _DRAWERS:
        raise ValueError(f"Unknown shape class {name!r}: choose from {', '.join(SHAPE_CLASSES)}.")
    image = Image.fromarray(_background(rng, image_size).astype(np.uint8))
    _DRAWERS[name](_Canvas(image, rng, tuple(int(v) for v in _colour(rng, *_INK))))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(0, 4)):  # distractor specks
        x, y = rng.uniform(0, image_size, size=2)
        r = image_size * rng.uniform(0.01, 0.03)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in _colour(rng)))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(2, 12), size=(image_size, image_size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _check_root(root: Path) -> None:
    """`root` must be missing, empty, or a dataset this module wrote (it has the manifest)."""
    if root.exists() and any(root.iterdir()) and not (root / MANIFEST).exists():
        raise ValueError(f"{root} is not empty and holds no {MANIFEST}: give an empty or new directory.")


def _write_images(
    folder: Path, class_names: Sequence[str], counts: dict[str, int], image_size: int, seed: int, extension: str
) -> None:
    for split, count in counts.items():
        for name in class_names:
            (folder / split / name).mkdir(parents=True)
            class_key = SHAPE_CLASSES.index(name)
            for i in range(count):
                rng = np.random.default_rng([seed, class_key, _SPLIT_STREAMS[split], i])
                Image.fromarray(draw_shape(name, image_size, rng)).save(folder / split / name / f"{i:05d}{extension}")


def write_shapes_dataset(
    root: str | Path,
    class_names: Sequence[str],
    *,
    train_per_class: int,
    validation_per_class: int,
    image_size: int,
    seed: int,
    image_format: str = "png",
) -> Path:
    """Write an image folder root/{train,validation}/<class>/<i>.<ext> of procedurally drawn shapes.

    Deterministic per (seed, class name, split, index): the same call writes the same pixels, and
    a class's images do not depend on which other classes are written. Writes into a sibling
    `<root>.partial` and renames it at the end, so a root with shapes.json is always complete.
    Replaces a root this function wrote before; refuses any other non-empty directory. Returns the root.
    """
    if image_format not in _FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(_FORMATS)}, got {image_format!r}.")
    unknown = [n for n in class_names if n not in _DRAWERS]
    if unknown:
        raise ValueError(f"Unknown shape classes {unknown}: choose from {', '.join(SHAPE_CLASSES)}.")
    root = Path(root)
    _check_root(root)
    counts = {"train": train_per_class, "validation": validation_per_class}
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_images(partial, class_names, counts, image_size, seed, _FORMATS[image_format])
        manifest = {"classes": list(class_names), "image_size": image_size, "seed": seed, "counts": counts}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(root, ignore_errors=True)  # missing, empty, or written here before (checked above)
        partial.rename(root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root
