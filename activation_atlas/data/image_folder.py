"""Reading image folders: the ImageNet layout <root>/<class>/<image> (labels from the sorted class
names) or a flat folder of unlabelled images (label −1); seeded subsampling; unreadable, tiny and
missing images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from activation_atlas.runtime import RunError, derive_seed, sha256_of

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class ImageFolder:
    """The files of one split, in a fixed order (sorted by class, then file name)."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: np.ndarray
    # Class folders without an image: kept as classes, so that class indices follow the folder order.
    empty_classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.files)


LAYOUTS = ("class_folders", "flat")
RESIZE_POLICIES = ("resize", "resize_crop")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def chosen_pictures(folder: str | None, log) -> list[Path]:
    """The pictures of the pair's folder (attacks.pictures), by name; none without a folder."""
    if folder is None:
        return []
    pictures = image_files(Path(folder))
    if not pictures:
        raise RunError(f"attacks.pictures: {folder} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))})")
    names = ", ".join(path.name for path in pictures[:5]) + (", ..." if len(pictures) > 5 else "")
    log(f"{len(pictures)} pictures from {folder}: {names}")
    return pictures


def scan_image_folder(root: Path | str, layout: str = "class_folders") -> ImageFolder:
    """The images under root: in class sub-folders (labels 0.. in sorted folder order) or flat
    (label −1, no classes)."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"image folder {root} does not exist")
    if layout not in LAYOUTS:
        raise RunError(f"unknown image folder layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if layout == "flat":
        files = image_files(root)
        classes, labels = (), [-1] * len(files)
    else:
        classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        if not classes:
            raise RunError(
                f"image folder {root} has no class sub-folders (use layout: flat for a folder of unlabelled images)"
            )
        files, labels, empty = [], [], []
        for label, name in enumerate(classes):
            found = image_files(root / name)
            files += found
            labels += [label] * len(found)
            if not found:
                empty.append(name)
    if not files:
        raise RunError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return ImageFolder(
        root, classes, tuple(files), np.asarray(labels, dtype=np.int64), tuple(empty) if layout != "flat" else ()
    )


def subsample(folder: ImageFolder, max_images: int | None, seed: int, stratified: bool) -> ImageFolder:
    """At most max_images of the folder's images, chosen by a seeded generator, in folder order.
    Stratified: every class keeps the same share (±1 image) as in the whole folder."""
    if max_images is None or max_images >= len(folder):
        return folder
    rng = np.random.default_rng(seed)
    if stratified and folder.classes:
        counts = np.bincount(folder.labels, minlength=len(folder.classes))
        quota = np.floor(counts * max_images / len(folder)).astype(int)
        # Hand the remaining images to the classes with the largest fractional shares.
        remainder = counts * max_images / len(folder) - quota
        quota[np.argsort(-remainder, kind="stable")[: max_images - quota.sum()]] += 1
        chosen = np.concatenate(
            [
                rng.choice(np.flatnonzero(folder.labels == c), quota[c], replace=False)
                for c in range(len(folder.classes))
            ]
        )
    else:
        chosen = rng.choice(len(folder), max_images, replace=False)
    chosen = np.sort(chosen)
    return ImageFolder(
        folder.root, folder.classes, tuple(folder.files[i] for i in chosen), folder.labels[chosen], folder.empty_classes
    )


@dataclass(frozen=True)
class ImageSelection:
    """Which images of a folder a run uses (the dataset section's layout, max_images, stratified)."""

    folder: str
    layout: str
    max_images: int | None
    stratified: bool


def select_images(selection: ImageSelection, seed: int, log) -> ImageFolder:
    """The images to extract from: the folder's, subsampled to max_images with a seed derived from `seed`."""
    folder = scan_image_folder(selection.folder, selection.layout)
    chosen = subsample(folder, selection.max_images, derive_seed(seed, "subsample"), selection.stratified)
    log(
        f"{len(chosen)} of {len(folder)} images in {selection.folder}"
        + (f" ({len(folder.classes)} classes)" if folder.classes else " (unlabelled)")
    )
    warn_of_empty_classes(folder, log)
    return chosen


def warn_of_empty_classes(folder: ImageFolder, log) -> None:
    if folder.empty_classes:
        log(
            f"warning: {len(folder.empty_classes)} class folder(s) of {folder.root} hold no image: "
            f"{', '.join(folder.empty_classes[:10])}{' ...' if len(folder.empty_classes) > 10 else ''} "
            "(kept as classes, so that class indices follow the folder order; remove them if they are "
            "not classes of the model)"
        )


def load_image(path: Path, size: int, policy: str = "resize") -> np.ndarray:
    """RGB uint8 (size, size, 3). resize: scale to size×size; resize_crop: scale the shorter side
    to size, then take the centre square."""
    return load_image_and_size(path, size, policy)[0]


def load_image_and_size(path: Path, size: int, policy: str = "resize") -> tuple[np.ndarray, tuple[int, int]]:
    """load_image's pixels, and the image's own (width, height)."""
    with Image.open(path) as img:
        original = img.size
        img = img.convert("RGB")
        if policy == "resize_crop":
            w, h = img.size
            scale = size / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
            img = img.crop((left, top, left + size, top + size))
        elif policy != "resize":
            raise RunError(f"unknown resize policy {policy!r}; valid: {', '.join(RESIZE_POLICIES)}")
        elif img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8), original


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 → (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)


def load_batch(folder: ImageFolder, indices, size: int, policy: str = "resize") -> torch.Tensor:
    """Images at the given indices as float32 (B, 3, H, W) in [0, 1]; an unreadable image raises."""
    return to_tensor(np.stack([load_image(folder.files[i], size, policy) for i in indices]))


class BatchRead(NamedTuple):
    images: torch.Tensor  # (B, 3, size, size) float32 in [0, 1]
    kept: np.ndarray  # the indices read
    skipped: list[Path]  # unreadable images
    upscaled: list[tuple[Path, tuple[int, int]]]  # images smaller than size on their shorter side


def read_batch(folder: ImageFolder, indices, size: int, policy: str, on_unreadable: str, log) -> BatchRead:
    """Like load_batch, but an unreadable or corrupt image is skipped (logged) when on_unreadable is
    'skip', or raises naming the file when it is 'fail'; images scaled up to size are listed."""
    pixels, kept, skipped, upscaled = [], [], [], []
    for i in indices:
        try:
            image, (width, height) = load_image_and_size(folder.files[i], size, policy)
            pixels.append(image)
            kept.append(i)
            if min(width, height) < size:
                upscaled.append((folder.files[i], (width, height)))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            if on_unreadable == "fail":
                raise RunError(f"unreadable image {folder.files[i]}: {error}") from error
            log(f"skipping unreadable image {folder.files[i]}: {error}")
            skipped.append(folder.files[i])
    images = to_tensor(np.stack(pixels)) if pixels else torch.zeros(0, 3, size, size)
    return BatchRead(images, np.asarray(kept, dtype=np.int64), skipped, upscaled)


def describe_upscaled(upscaled: list[tuple[Path, tuple[int, int]]], size: int) -> str:
    """One warning line for the images scaled up to the input size, naming the smallest."""
    path, (width, height) = min(upscaled, key=lambda item: (min(item[1]), str(item[0])))
    return (
        f"warning: {len(upscaled)} image(s) smaller than {size} px on their shorter side were scaled up "
        f"to the model's input (the smallest: {path}, {width}×{height} px); their activations show "
        "interpolation more than content"
    )


def load_all(folder: ImageFolder, size: int) -> torch.Tensor:
    """Every image as uint8 (N, 3, H, W): small datasets only (training the demo model)."""
    pixels = np.stack([load_image(p, size) for p in folder.files])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def images_with_bytes_of(candidates: list[Path], others: list[Path]) -> set[Path]:
    """The candidates whose bytes equal one of the others' (only files of equal size are hashed)."""
    sizes = {path.stat().st_size for path in candidates}
    hashes = {sha256_of(path) for path in others if path.stat().st_size in sizes}
    return {path for path in candidates if sha256_of(path) in hashes}
