"""The layout file: each activation's UMAP coordinates, raw and normalised to the atlas square
(results/<run>/layout/<layer>.h5, and class_atlas/<name>/layout.h5 for a class atlas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activation_atlas.h5io import create_h5, open_h5, write_dataset

# name: (unit, axes)
DATASETS = {
    "xy_raw": ("UMAP units", "row, (x, y)"),
    "xy": ("fraction of the atlas", "row, (x, y) in [0, 1]; y grows upwards"),
}
# class_index and class_name in class atlases only, x_axis and y_axis in comparisons only.
ATTRIBUTES = ("stage", "package_version", "config", "layer", "seed", "class_index", "class_name", "x_axis", "y_axis")


def write_layout(path: Path | str, raw: np.ndarray, xy: np.ndarray, umap: dict, **provenance) -> None:
    """Coordinates of the rows of an activation file; `umap` is recorded as the layout config."""
    with create_h5(path, "layout", config={"layout": umap}, **provenance) as f:
        for name, data in (("xy_raw", raw), ("xy", xy)):
            write_dataset(f, name, data, *DATASETS[name])


def read_xy(path: Path | str) -> np.ndarray:
    """(N, 2) normalised coordinates in [0, 1]²."""
    with open_h5(path) as f:
        return f["xy"][:]
