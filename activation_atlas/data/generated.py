"""A procedurally generated image-classification dataset for the offline demo.

Each class is one combination of shape, colour and texture; every image draws its object's position,
scale and rotation and a cluttered, noisy background from a generator seeded by (seed, split, index),
so the dataset is identical on every run and every image can be regenerated alone.

On disk it uses the image-folder layout the real-image path reads::

    <root>/train/<class>/<index>.png
    <root>/held_out/<class>/<index>.png
    <root>/factors.csv      one row per image: split, index, file, class, shape, colour, texture, x, y, ...
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from activation_atlas.runtime import RunError

COLOURS = {
    "red": (0.90, 0.15, 0.12),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "magenta": (0.85, 0.20, 0.80),
}
SHAPES = ("triangle", "square", "disc", "ring", "cross")
TEXTURES = ("solid", "stripes", "dots", "checks")

# Ten classes that share factors pairwise, so no single factor identifies a class:
# a network must combine shape, colour and texture.
DEFAULT_CLASSES = (
    ("triangle", "red", "stripes"),
    ("ring", "blue", "dots"),
    ("square", "green", "checks"),
    ("disc", "yellow", "solid"),
    ("square", "red", "dots"),
    ("triangle", "blue", "solid"),
    ("ring", "green", "stripes"),
    ("cross", "magenta", "checks"),
    ("disc", "red", "checks"),
    ("cross", "yellow", "stripes"),
)

SPLITS = ("train", "held_out")
FACTOR_COLUMNS = (
    "split",
    "index",
    "file",
    "label",
    "class",
    "shape",
    "colour",
    "texture",
    "x",
    "y",
    "scale",
    "rotation_deg",
)


@dataclass(frozen=True)
class ClassSpec:
    shape: str
    colour: str
    texture: str

    @property
    def name(self) -> str:
        return f"{self.colour}_{self.texture}_{self.shape}"


def class_specs(combinations=DEFAULT_CLASSES) -> list[ClassSpec]:
    """Validate and return the class list; each entry is (shape, colour, texture)."""
    specs = []
    for shape, colour, texture in combinations:
        if shape not in SHAPES:
            raise RunError(f"unknown shape {shape!r}; valid shapes: {', '.join(SHAPES)}")
        if colour not in COLOURS:
            raise RunError(f"unknown colour {colour!r}; valid colours: {', '.join(COLOURS)}")
        if texture not in TEXTURES:
            raise RunError(f"unknown texture {texture!r}; valid textures: {', '.join(TEXTURES)}")
        specs.append(ClassSpec(shape, colour, texture))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise RunError(f"class combinations must be distinct, got {names}")
    # Labels follow the sorted folder names, as the image-folder reader assigns them.
    return sorted(specs, key=lambda s: s.name)


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for one image: independent of every other image and of generation order."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Soft coverage in [0, 1] of a unit-radius shape at object coordinates (u, v)."""
    r = np.hypot(u, v)
    if shape == "disc":
        d = r - 1.0
    elif shape == "ring":
        d = np.abs(r - 0.72) - 0.28
    elif shape == "square":
        d = np.maximum(np.abs(u), np.abs(v)) - 0.8
    elif shape == "cross":
        arm = 0.3
        d = np.minimum(np.maximum(np.abs(u) - arm, np.abs(v) - 1.0), np.maximum(np.abs(v) - arm, np.abs(u) - 1.0))
    elif shape == "triangle":
        # Equilateral triangle with circumradius 1: the maximum over its three edge half-planes.
        angles = np.deg2rad([90.0, 210.0, 330.0])
        d = np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - 0.5
    else:
        raise RunError(f"unknown shape {shape!r}; valid shapes: {', '.join(SHAPES)}")
    # d is in object units; a ramp of ~1.5 pixels anti-aliases the edge.
    return np.clip(0.5 - d / 0.06, 0.0, 1.0)


def texture_pattern(texture: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Pattern in [0, 1] (1 = full colour) on object coordinates, so it rotates with the object."""
    if texture == "solid":
        return np.ones_like(u)
    if texture == "stripes":
        return (np.sin(2 * np.pi * u / period) > 0).astype(np.float64)
    if texture == "dots":
        fu = u / period - np.floor(u / period) - 0.5
        fv = v / period - np.floor(v / period) - 0.5
        return (np.hypot(fu, fv) < 0.3).astype(np.float64)
    if texture == "checks":
        return ((np.floor(u / period) + np.floor(v / period)) % 2 == 0).astype(np.float64)
    raise RunError(f"unknown texture {texture!r}; valid textures: {', '.join(TEXTURES)}")


def cluttered_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field, a few grey distractor strokes and pixel noise, (H, W, 3)."""
    coarse = rng.uniform(0.25, 0.65, size=(4, 4, 3))
    field = (
        np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR), dtype=np.float64
        )
        / 255.0
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        dist = np.abs((xx - x0) * np.sin(angle) - (yy - y0) * np.cos(angle))
        stroke = np.clip(1.5 - dist, 0.0, 1.0)[..., None]
        field = field * (1 - 0.6 * stroke) + 0.6 * stroke * rng.uniform(0.2, 0.8)
    return field


def render_image(spec: ClassSpec, rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    """One image (uint8, H×W×3) of the class and the factors drawn for it."""
    scale = rng.uniform(0.22, 0.36) * size  # object radius in pixels
    cx, cy = rng.uniform(scale, size - scale, 2)
    rotation = rng.uniform(0.0, 360.0)
    period = rng.uniform(0.32, 0.42)  # texture period in object units
    colour = np.clip(np.array(COLOURS[spec.colour]) + rng.normal(0.0, 0.04, 3), 0.0, 1.0)

    image = cluttered_background(rng, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    theta = np.deg2rad(rotation)
    dx, dy = (xx - cx) / scale, (cy - yy) / scale
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    coverage = shape_mask(spec.shape, u, v)[..., None]
    pattern = texture_pattern(spec.texture, u, v, period)[..., None]
    fill = colour * (0.3 + 0.7 * pattern)
    image = image * (1 - coverage) + fill * coverage
    image = image + rng.normal(0.0, 0.04, image.shape)
    pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    factors = {
        "x": round(cx / size, 4),
        "y": round(cy / size, 4),
        "scale": round(scale / size, 4),
        "rotation_deg": round(rotation, 2),
    }
    return pixels, factors


def generate_dataset(
    root: Path | str,
    seed: int,
    image_size: int,
    images_per_class: dict[str, int],
    combinations=DEFAULT_CLASSES,
    log=None,
) -> Path:
    """Write every split of the dataset under root and its factor table; returns the table's path.

    images_per_class maps split name ('train', 'held_out') to the number of images per class.
    Images are assigned to classes round-robin, so index i has label i % n_classes.
    """
    root = Path(root)
    specs = class_specs(combinations)
    unknown = set(images_per_class) - set(SPLITS)
    if unknown:
        raise RunError(f"unknown split(s) {sorted(unknown)}; valid splits: {', '.join(SPLITS)}")
    rows = []
    for split in SPLITS:
        count = images_per_class.get(split, 0) * len(specs)
        for spec in specs:
            (root / split / spec.name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            label = index % len(specs)
            spec = specs[label]
            pixels, factors = render_image(spec, image_rng(seed, split, index), image_size)
            rel = f"{split}/{spec.name}/{index:06d}.png"
            Image.fromarray(pixels).save(root / rel, optimize=False)
            rows.append(
                {
                    "split": split,
                    "index": index,
                    "file": rel,
                    "label": label,
                    "class": spec.name,
                    "shape": spec.shape,
                    "colour": spec.colour,
                    "texture": spec.texture,
                    **factors,
                }
            )
            if log is not None and (index + 1) % 500 == 0:
                log(f"{split}: {index + 1}/{count} images")
        if log is not None:
            log(f"{split}: {count} images written")
    table = root / "factors.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FACTOR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return table
