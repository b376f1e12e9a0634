"""The patches of a patch attack (results/<run>/attacks/<a>_vs_<b>/patches.h5): per patch its kind and
where it came from, and its pixels at every size, as pasted."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from activation_atlas.h5io import create_h5, open_h5, write_dataset

# name: (unit, axes)
DATASETS = {
    "kind": ("patch kind (algorithms/attacks.KINDS)", "patch"),
    "cell": ("cell (row, col); -1: none", "patch, (row, col) of the comparison's grid"),
    "lean": ("logit (mean attribution to b minus to a)", "patch; NaN: not from a cell"),
    "image_index": ("image index of the atlas's images (-1: none)", "patch"),
    "crop": ("pixel (-1: none)", "patch, (top, left, side) in the image at the model's input size"),
    "picture": ("file name in attacks.pictures' folder of the pair (empty: none)", "patch"),
    "pixels": (
        "uint8 RGB",
        "patch, size (sizes_px), y, x, channel; a patch of px pixels fills [:px, :px], zeros pad the rest",
    ),
}
TEXT = ("kind", "picture")
ATTRIBUTES = ("stage", "package_version", "layer", "seed", "pair", "sizes", "sizes_px", "config")


def write_patches(
    path: Path | str, columns: dict[str, np.ndarray], pixels: dict[int, np.ndarray], **provenance
) -> None:
    """columns: every dataset but pixels; pixels: side in px → (P, px, px, 3) uint8, in the order of
    provenance's sizes_px."""
    sides = list(pixels)
    padded = np.zeros((len(columns["kind"]), len(sides), max(sides), max(sides), 3), dtype=np.uint8)
    for s, px in enumerate(sides):
        padded[:, s, :px, :px] = pixels[px]
    text = {name: np.asarray(columns[name], dtype=object) for name in TEXT}
    data = {**columns, **text, "pixels": padded}
    with create_h5(path, "attack_patches", **provenance) as f:
        for name, (unit, axes) in DATASETS.items():
            write_dataset(f, name, data[name], unit, axes, dtype=h5py.string_dtype() if name in TEXT else None)


def read_patches(path: Path | str) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray], dict]:
    """(columns, pixels by side, attributes) of a patches file."""
    with open_h5(path) as f:
        columns = {name: f[name][:] for name in DATASETS if name != "pixels"}
        for name in TEXT:
            columns[name] = np.array([k.decode() if isinstance(k, bytes) else k for k in columns[name]])
        sides = json.loads(f.attrs["sizes_px"])
        padded = f["pixels"][:]
        attrs = {key: f.attrs[key] for key in f.attrs}
    return columns, {px: padded[:, s, :px, :px].copy() for s, px in enumerate(sides)}, attrs
