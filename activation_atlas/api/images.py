"""The images a Python API call extracts from: a folder on disk (read as the workflow reads a
dataset), a tensor, a torch Dataset or DataLoader, or, given none, the config's own dataset; and the
dataset section that records them."""

from __future__ import annotations

from pathlib import Path

from activation_atlas.data.image_folder import ImageSelection, select_images
from activation_atlas.data.sources import DatasetImages, FolderImages, TensorImages
from activation_atlas.runtime import RunError
from activation_atlas.workflow import settings
from activation_atlas.workflow.config_check import IN_MEMORY_DATASET


def dataset_section(images, dataset: dict) -> dict:
    """The dataset section of a call: the config's for its own images; a folder's or objects' kind
    otherwise, with the config's reading options (layout, max_images, stratified, on_unreadable)."""
    if images is None:
        return dataset
    options = {key: dataset[key] for key in ("layout", "max_images", "stratified", "on_unreadable") if key in dataset}
    if isinstance(images, (str, Path)):
        return {**options, "kind": "image_folder", "path": str(images)}
    return {**options, "kind": IN_MEMORY_DATASET, "name": type(images).__name__}


def image_source(images, config: dict, labels, classes, log):
    """What extraction reads images from (data/sources.py)."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    if images is None or isinstance(images, (str, Path)):
        folder = settings.images_dir(config)
        if not Path(folder).is_dir():
            why = "" if images is not None else " (the config's dataset): give images, or run its workflow first"
            raise RunError(f"images: {folder} does not exist{why}")
        selection = ImageSelection(**settings.image_selection(config))
        chosen = select_images(selection, config["seed"], log)
        return FolderImages(chosen, config["model"]["resize"], config["dataset"]["on_unreadable"])
    if isinstance(images, torch.Tensor):
        return TensorImages(images, labels, classes or ())
    if isinstance(images, DataLoader):
        images = images.dataset
    if isinstance(images, Dataset) and hasattr(images, "__len__"):
        return DatasetImages(images, classes or ())
    raise RunError(
        f"images is a {type(images).__name__}: give a folder, a tensor (N, 3, H, W), a torch Dataset or a DataLoader"
    )
