"""Where images come from: a folder on disk (the workflow's datasets), or images held in memory and
handed to the Python API (a tensor, a torch Dataset). Each reads a batch of its images, by index, as
(B, 3, size, size) float32 RGB in [0, 1] (data.image_folder.BatchRead), and knows its class names and
labels (−1: unknown)."""

from __future__ import annotations

import numpy as np
import torch

from activation_atlas.data.image_folder import BatchRead, ImageFolder, read_batch
from activation_atlas.runtime import RunError


class FolderImages:
    """A folder's images, read as the workflow reads them (model.resize, dataset.on_unreadable)."""

    def __init__(self, folder: ImageFolder, resize: str, on_unreadable: str):
        self.folder, self.resize, self.on_unreadable = folder, resize, on_unreadable
        self.classes, self.empty_classes, self.labels = folder.classes, folder.empty_classes, folder.labels

    def __len__(self) -> int:
        return len(self.folder)

    def read(self, indices, size: int, log) -> BatchRead:
        return read_batch(self.folder, indices, size, self.resize, self.on_unreadable, log)


def as_image_batch(images, size: int, what: str) -> torch.Tensor:
    """(B, 3, size, size) float32 in [0, 1] of images given as float in [0, 1] or uint8 0–255, with one
    or three channels; any other shape is refused, saying what the model takes."""
    if images.dtype == torch.uint8:
        images = images.float().div(255.0)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or tuple(images.shape[2:]) != (size, size):
        raise RunError(
            f"{what} are of shape {tuple(images.shape)}; the model takes (N, 3, {size}, {size}): RGB images of its "
            f"input size, {size} px (resize them, or give input_size)"
        )
    if not images.is_floating_point():
        raise RunError(f"{what} are {images.dtype}: give float images in [0, 1] or uint8 images in 0–255")
    return images.float().expand(-1, 3, -1, -1)


class TensorImages:
    """Images in one tensor (N, 3, H, W), float in [0, 1] or uint8, with their labels if given."""

    def __init__(self, images: torch.Tensor, labels=None, classes=()):
        self.images = images.detach().cpu()
        self.labels = np.full(len(images), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        if len(self.labels) != len(images):
            raise RunError(f"{len(self.labels)} labels for {len(images)} images: give one label per image")
        self.classes, self.empty_classes = tuple(classes), ()

    def __len__(self) -> int:
        return len(self.images)

    def read(self, indices, size: int, log) -> BatchRead:
        return BatchRead(as_image_batch(self.images[indices], size, "the images"), np.asarray(indices), [], [])


class DatasetImages:
    """The items of a map-style torch Dataset: an image tensor, or (image, label, ...). The labels are
    known as the images are read (the dataset's `targets` where it has them)."""

    def __init__(self, dataset, classes=()):
        self.dataset = dataset
        targets = getattr(dataset, "targets", None)
        self.labels = np.full(len(dataset), -1, np.int64) if targets is None else np.asarray(targets, np.int64)
        self.classes = tuple(classes or getattr(dataset, "classes", ()) or ())
        self.empty_classes = ()

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, indices, size: int, log) -> BatchRead:
        items = [self.dataset[int(i)] for i in indices]
        if isinstance(items[0], (tuple, list)):
            self.labels[indices] = [int(item[1]) if len(item) > 1 else -1 for item in items]
            items = [item[0] for item in items]
        if not all(isinstance(item, torch.Tensor) for item in items):
            raise RunError(
                f"dataset item {int(indices[0])} is a {type(items[0]).__name__}; the dataset must give image tensors "
                "(C, H, W): add torchvision.transforms.ToTensor() to its transform"
            )
        shapes = sorted({tuple(item.shape) for item in items})
        if len(shapes) > 1:
            raise RunError(
                f"the dataset's images {int(indices[0])}–{int(indices[-1])} are of shapes {shapes}: give images of one "
                "size (a Resize and a CenterCrop in its transform)"
            )
        return BatchRead(as_image_batch(torch.stack(items), size, "the dataset's images"), np.asarray(indices), [], [])
