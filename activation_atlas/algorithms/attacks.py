"""Patch attacks, the paper's test of what a class comparison atlas found ("From atlas to attack"): a
patch made from a cell that leans towards class b, pasted into images of class a, may flip the
network's answer to b. Controls of the same sizes (noise, cells leaning towards a, random cells) say how
much of a flip any patch of that size causes.

Placements: a patch is a square of side `fraction × image side` flush with one of the four corners; the
figures of static and dynamic placement are algorithms/attack_outcomes.py's.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from activation_atlas.formats.attack_results import AttackResults
from activation_atlas.runtime import RunError

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")

# Patch kinds, in the order of the patches file: from cells leaning towards b (the attack), then the
# controls. {a} and {b} stand for the class names.
KINDS = {
    "b_icon": "icon of a cell leaning towards {b}",
    "b_crop": "dataset crop from a cell leaning towards {b}",
    "b_picture": "picture chosen to resemble a cell leaning towards {b} (attacks.pictures)",
    "noise": "uniform noise",
    "a_icon": "icon of a cell leaning towards {a}",
    "a_crop": "dataset crop from a cell leaning towards {a}",
    "random_icon": "icon of a random cell",
    "random_crop": "dataset crop from a random cell",
}


def lean_towards_b(mean_attribution: np.ndarray, a: int, b: int) -> np.ndarray:
    """Each cell's mean attribution to b minus to a: how far it leans towards b (the comparison's x
    axis, per cell and unnormalised)."""
    return mean_attribution[:, b].astype(np.float64) - mean_attribution[:, a].astype(np.float64)


def choose_cells(lean: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Cell slots of the n cells leaning most towards b, the n leaning most towards a among the rest,
    and up to n random cells among the others (fewer where the grid has fewer)."""
    order = np.argsort(-lean, kind="stable")
    towards_b = order[:n]
    towards_a = order[n:][::-1][:n]
    others = np.setdiff1d(order, np.concatenate([towards_b, towards_a]))
    random = np.sort(rng.choice(others, size=min(n, len(others)), replace=False)) if len(others) else others
    return {"b": towards_b.astype(np.int64), "a": towards_a.astype(np.int64), "random": random.astype(np.int64)}


def describe_cells(cells, lean: np.ndarray, slots: np.ndarray) -> str:
    """'(row, col) lean, ...' of the given cell slots, for the log."""
    return ", ".join(f"({cells.row[s]}, {cells.col[s]}) {lean[s]:+.3g}" for s in slots) or "none"


def closest_to_mean(activations: np.ndarray, mean: np.ndarray, image_index: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the k activations most like the cell's mean vector (cosine), one per image."""
    norms = np.linalg.norm(activations, axis=1) * max(float(np.linalg.norm(mean)), 1e-12)
    cosine = activations @ mean / np.maximum(norms, 1e-12)
    chosen, seen = [], set()
    for row in np.argsort(-cosine, kind="stable"):
        if int(image_index[row]) not in seen:
            seen.add(int(image_index[row]))
            chosen.append(int(row))
        if len(chosen) == k:
            break
    return np.asarray(chosen, dtype=np.int64)


def crop_origin(position, grid_hw, side: int, crop_px: int) -> tuple[int, int]:
    """(top, left) of a crop_px square centred on the image point under a layer position (row, col) of
    a (H, W) grid, moved inside the image where it would run off."""
    origin = []
    for index, cells in zip(position, grid_hw):
        centre = (int(index) + 0.5) * side / int(cells)
        origin.append(int(np.clip(np.floor(centre - crop_px / 2 + 0.5), 0, side - crop_px)))
    return origin[0], origin[1]


def resized(pixels: np.ndarray, px: int) -> np.ndarray:
    """(px, px, 3) uint8: a square uint8 RGB patch scaled with a Lanczos filter (deterministic)."""
    if pixels.shape[0] == px and pixels.shape[1] == px:
        return pixels.copy()
    return np.asarray(Image.fromarray(pixels).resize((px, px), Image.Resampling.LANCZOS))


def noise_patch(px: int, rng: np.random.Generator) -> np.ndarray:
    """(px, px, 3) uint8 uniform noise."""
    return rng.integers(0, 256, size=(px, px, 3), dtype=np.uint8)


def patch_sides(fractions: list[float], side: int) -> list[int]:
    """Each patch size as pixels of an image `side` px wide (at least 1); two sizes of one side are an
    error (the results have one entry per size)."""
    sides = [max(1, int(round(fraction * side))) for fraction in fractions]
    if len(set(sides)) < len(sides):
        raise RunError(
            f"attacks.sizes = {list(fractions)} give patch sides {sides} px on {side} px images: two are "
            f"the same; make the sizes differ by at least 1/{side}"
        )
    return sides


def corner_origin(corner: str, side: int, px: int) -> tuple[int, int]:
    """(top, left) of a px square flush with a corner of a side × side image."""
    top = 0 if corner.startswith("top") else side - px
    left = 0 if corner.endswith("left") else side - px
    return top, left


def pasted(images: torch.Tensor, patch: torch.Tensor, corner: str) -> torch.Tensor:
    """A copy of (B, 3, S, S) images in [0, 1] with a (3, px, px) patch in [0, 1] over one corner."""
    out = images.clone()
    px = patch.shape[-1]
    top, left = corner_origin(corner, images.shape[-1], px)
    out[:, :, top : top + px, left : left + px] = patch
    return out


def answer(model, images: torch.Tensor, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's top-1 class and softmax probability of b for each image (on the model's device)."""
    with torch.inference_mode():
        probabilities = torch.softmax(model(images).float(), dim=1).cpu()
    return probabilities.argmax(dim=1).numpy().astype(np.int32), probabilities[:, b].numpy()


def attack_batch(model, images: torch.Tensor, patches: list[torch.Tensor], b: int) -> AttackResults:
    """A batch of images clean and with every patch (patches: per size, (P, 3, px, px) in [0, 1]) at every
    size and corner, through the model; images and patches on the model's device (pasted there)."""
    shape = (len(patches[0]), len(patches), len(CORNERS), len(images))
    top, p_b = np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.float32)
    clean_top, clean_p_b = answer(model, images, b)
    for s, at_size in enumerate(patches):
        for p, patch in enumerate(at_size):
            for c, corner in enumerate(CORNERS):
                top[p, s, c], p_b[p, s, c] = answer(model, pasted(images, patch, corner), b)
    return AttackResults(clean_top, clean_p_b, top, p_b)
