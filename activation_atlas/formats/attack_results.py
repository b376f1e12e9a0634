"""What the network answered in a patch attack (results/<run>/attacks/<a>_vs_<b>/results.h5, written
per shard of the images under shards/<k>.h5 and merged): for every image clean, and for every patch,
size and corner, its top-1 class and probability of b."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activation_atlas.h5io import create_h5, open_h5, write_dataset


@dataclass
class AttackResults:
    """Per image (N): the clean image's top-1 class and probability of b; per patch, size, corner and
    image (P, S, 4, N): the patched image's top-1 class and probability of b."""

    clean_top: np.ndarray
    clean_p_b: np.ndarray
    top: np.ndarray
    p_b: np.ndarray


def concatenated(parts: list[AttackResults]) -> AttackResults:
    """Results of consecutive batches of images as one."""
    return AttackResults(
        clean_top=np.concatenate([part.clean_top for part in parts]),
        clean_p_b=np.concatenate([part.clean_p_b for part in parts]),
        top=np.concatenate([part.top for part in parts], axis=-1),
        p_b=np.concatenate([part.p_b for part in parts], axis=-1),
    )


# name: (unit, axes)
DATASETS = {
    "image": ("index into images.json's images", "image"),
    "clean_top": ("class index", "image; the network's top-1 class of the clean image"),
    "clean_p_b": ("probability", "image; softmax probability of b, clean image"),
    "top": ("class index", "patch, size, corner, image"),
    "p_b": ("probability", "patch, size, corner, image; softmax probability of b"),
}
# shard: [k, K] in the shard files only.
ATTRIBUTES = ("stage", "package_version", "seed", "pair", "corners", "shard")


def write_results(path: Path | str, image: np.ndarray, results: AttackResults, **provenance) -> None:
    with create_h5(path, "attack_results", **provenance) as f:
        data = {
            "image": image,
            "clean_top": results.clean_top,
            "clean_p_b": results.clean_p_b,
            "top": results.top,
            "p_b": results.p_b,
        }
        for name, (unit, axes) in DATASETS.items():
            write_dataset(f, name, data[name], unit, axes)


def read_results(path: Path | str) -> tuple[np.ndarray, AttackResults]:
    with open_h5(path) as f:
        return f["image"][:], AttackResults(
            clean_top=f["clean_top"][:], clean_p_b=f["clean_p_b"][:], top=f["top"][:], p_b=f["p_b"][:]
        )


def merge_results(shard_paths: list[Path | str], out_path: Path | str) -> tuple[np.ndarray, AttackResults]:
    """The shards' results concatenated along their images, in order: the same file for any number of
    shards. Returns what it wrote."""
    parts = [read_results(path) for path in shard_paths]
    with open_h5(shard_paths[0]) as f:  # the attributes as stored (pair and corners: JSON text)
        provenance = {k: f.attrs[k] for k in f.attrs if k not in ("stage", "package_version", "shard")}
    image = np.concatenate([p[0] for p in parts])
    results = concatenated([p[1] for p in parts])
    write_results(out_path, image, results, **provenance)
    return image, results
