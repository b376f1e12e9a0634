"""The files of a patch attack (results/<run>/attacks/<a>_vs_<b>/): the patches, each at every size
(patches.h5), and what the network answered for every image, patch, size and corner (results.h5,
written per shard of the images and merged)."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from activation_atlas.algorithms.attacks import AttackResults, concatenated
from activation_atlas.h5io import create_h5, open_h5, write_dataset

# name: (unit, axes); size<px> holds every patch at one size.
PATCH_DATASETS = {
    "kind": ("patch kind (algorithms/attacks.KINDS)", "patch"),
    "cell": ("cell (row, col); -1: none", "patch, (row, col) of the comparison's grid"),
    "lean": ("logit (mean attribution to b minus to a)", "patch; NaN: not from a cell"),
    "image_index": ("image index of the atlas's images (-1: none)", "patch"),
    "crop": ("pixel (-1: none)", "patch, (top, left, side) in the image at the model's input size"),
}
SIZE_AXES = "patch, y, x, channel"
PATCH_ATTRIBUTES = ("stage", "package_version", "layer", "seed", "pair", "sizes", "sizes_px", "config")

RESULT_DATASETS = {
    "image": ("index into images.json's images", "image"),
    "clean_top": ("class index", "image; the network's top-1 class of the clean image"),
    "clean_p_b": ("probability", "image; softmax probability of b, clean image"),
    "top": ("class index", "patch, size, corner, image"),
    "p_b": ("probability", "patch, size, corner, image; softmax probability of b"),
}
RESULT_ATTRIBUTES = ("stage", "package_version", "seed", "pair", "corners", "shard")


def size_name(px: int) -> str:
    return f"size{px}"


def write_patches(path: Path | str, columns: dict[str, np.ndarray], pixels: dict[int, np.ndarray],
                  **provenance) -> None:
    """columns: the PATCH_DATASETS; pixels: side in px → (P, px, px, 3) uint8."""
    with create_h5(path, "attack_patches", **provenance) as f:
        for name, (unit, axes) in PATCH_DATASETS.items():
            data = columns[name]
            dtype = h5py.string_dtype() if name == "kind" else None
            write_dataset(f, name, np.asarray(data, dtype=object) if name == "kind" else data, unit, axes, dtype=dtype)
        for px, patches in pixels.items():
            write_dataset(f, size_name(px), patches, "uint8 RGB", SIZE_AXES)


def read_patches(path: Path | str) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray], dict]:
    """(columns, pixels by side, attributes) of a patches file."""
    with open_h5(path) as f:
        columns = {name: f[name][:] for name in PATCH_DATASETS}
        columns["kind"] = np.array([k.decode() if isinstance(k, bytes) else k for k in columns["kind"]])
        sizes_px = json.loads(f.attrs["sizes_px"])
        pixels = {px: f[size_name(px)][:] for px in sizes_px}
        attrs = {key: f.attrs[key] for key in f.attrs}
    return columns, pixels, attrs


def write_results(path: Path | str, image: np.ndarray, results: AttackResults, **provenance) -> None:
    with create_h5(path, "attack_results", **provenance) as f:
        data = {"image": image, "clean_top": results.clean_top, "clean_p_b": results.clean_p_b,
                "top": results.top, "p_b": results.p_b}
        for name, (unit, axes) in RESULT_DATASETS.items():
            write_dataset(f, name, data[name], unit, axes)


def read_results(path: Path | str) -> tuple[np.ndarray, AttackResults]:
    with open_h5(path) as f:
        return f["image"][:], AttackResults(clean_top=f["clean_top"][:], clean_p_b=f["clean_p_b"][:],
                                            top=f["top"][:], p_b=f["p_b"][:])


def merge_results(shard_paths: list[Path | str], out_path: Path | str) -> tuple[np.ndarray, AttackResults]:
    """The shards' results concatenated along their images, in order: the same file for any number of
    shards. Returns what it wrote."""
    parts = [read_results(path) for path in shard_paths]
    with open_h5(shard_paths[0]) as f:
        provenance = {k: f.attrs[k] for k in f.attrs if k not in ("stage", "package_version", "shard")}
    provenance = {k: json.loads(v) if k in ("pair", "corners") else v for k, v in provenance.items()}
    image = np.concatenate([p[0] for p in parts])
    results = concatenated([p[1] for p in parts])
    write_results(out_path, image, results, **provenance)
    return image, results
