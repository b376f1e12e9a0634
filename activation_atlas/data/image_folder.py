"""Reading an image-folder dataset: <root>/<split>/<class>/<image>, labels from the sorted class names."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class ImageFolder:
    """The files of one split, in a fixed order (sorted by class, then file name)."""
    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.files)


def scan_image_folder(root: Path | str) -> ImageFolder:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        raise ValueError(f"image folder {root} has no class sub-folders")
    files, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
                labels.append(label)
    if not files:
        raise ValueError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return ImageFolder(root, classes, tuple(files), np.asarray(labels, dtype=np.int64))


def load_image(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (H, W, 3), resized to size×size when it differs."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def load_batch(folder: ImageFolder, indices, size: int) -> torch.Tensor:
    """Images at the given indices as float32 (B, 3, H, W) in [0, 1]."""
    pixels = np.stack([load_image(folder.files[i], size) for i in indices])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)


def load_all(folder: ImageFolder, size: int) -> torch.Tensor:
    """Every image as uint8 (N, 3, H, W): small datasets only (training the demo model)."""
    pixels = np.stack([load_image(p, size) for p in folder.files])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
