"""The cells file: the kept cells of one grid over a layout, with their mean activation vectors,
counts, class histograms and sample images, and with attributions their mean attribution and top
classes (results/<run>/cells/<layer>/grid<G>.h5, class_atlas/<name>/cells.h5)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from activation_atlas.formats.model_card import dataset_to_logits
from activation_atlas.h5io import create_h5, open_h5, write_dataset


@dataclass
class Cells:
    """The kept cells of one grid, in row-major order of (row, col)."""

    grid_size: int
    row: np.ndarray  # (M,)
    col: np.ndarray  # (M,)
    count: np.ndarray  # (M,) points averaged
    mean: np.ndarray  # (M, C) mean activation vector
    class_histogram: np.ndarray  # (M, K) points per class label
    points_total: int  # points in the layout, kept cells or not

    @property
    def kept_fraction(self) -> float:
        return float(self.count.sum()) / self.points_total if self.points_total else 0.0

    @property
    def purity(self) -> np.ndarray:
        """Per cell, the share of its points that belong to its most common class."""
        return self.class_histogram.max(axis=1) / np.maximum(self.class_histogram.sum(axis=1), 1)


@dataclass
class CellAttributions:
    """Per kept cell: mean attribution to every class (M, K), its top classes (M, k) by that mean,
    their values and their names."""

    mean: np.ndarray
    top: np.ndarray
    values: np.ndarray
    names: np.ndarray


ATTRIBUTION_UNIT = "logit (h · ∂logit/∂h)"
# name: (unit, axes); the attribution four only when the activations carry attributions, atom and
# sample_positions only in a feature atlas (one cell per atom of a learned dictionary, its samples the
# images of its top activations, each at the activation's place in the layer's H×W map).
DATASETS = {
    "row": ("cell", "cell; row 0 at y = 0 (bottom)"),
    "col": ("cell", "cell; col 0 at x = 0 (left)"),
    "count": ("activations", "cell"),
    "mean": ("activation", "cell, channel"),
    "class_histogram": ("activations", "cell, class"),
    "sample_images": ("image index (-1: none)", "cell, sample"),
    "mean_attribution": (ATTRIBUTION_UNIT, "cell, class"),
    "top_classes": ("class index", "cell, rank"),
    "top_class_values": (ATTRIBUTION_UNIT, "cell, rank"),
    "top_class_names": ("class name", "cell, rank"),
    "atom": ("atom index", "cell"),
    "sample_positions": ("cell of the layer's map (-1: none)", "cell, sample, (row, col, H, W)"),
}
# class_index and class_name in class atlases only, x_axis and y_axis in comparisons only.
ATTRIBUTES = (
    "stage",
    "package_version",
    "grid_size",
    "layer",
    "seed",
    "classes",
    "config",
    "min_count",
    "points_total",
    "class_index",
    "class_name",
    "x_axis",
    "y_axis",
)


def write_cells(
    path: Path | str,
    cells: Cells,
    samples: np.ndarray,
    attributions: CellAttributions | None,
    min_count: int,
    atoms: np.ndarray | None = None,
    sample_positions: np.ndarray | None = None,
    **provenance,
) -> None:
    """atoms, sample_positions: in a feature atlas, the dictionary atom each cell shows and where in the
    layer's map each of its samples' activations lies."""
    with create_h5(path, "cells", grid_size=cells.grid_size, **provenance) as f:
        f.attrs["min_count"] = min_count
        f.attrs["points_total"] = cells.points_total
        columns = {
            "row": cells.row,
            "col": cells.col,
            "count": cells.count,
            "mean": cells.mean,
            "class_histogram": cells.class_histogram,
            "sample_images": samples,
        }
        if attributions is not None:
            columns.update(
                mean_attribution=attributions.mean, top_classes=attributions.top, top_class_values=attributions.values
            )
        if atoms is not None:
            columns["atom"] = atoms
        if sample_positions is not None:
            columns["sample_positions"] = sample_positions
        for name, data in columns.items():
            write_dataset(f, name, data, *DATASETS[name])
        if attributions is not None:
            write_dataset(
                f, "top_class_names", attributions.names, *DATASETS["top_class_names"], dtype=h5py.string_dtype()
            )


def read_cells(path: Path | str) -> Cells:
    with open_h5(path) as f:
        return Cells(
            grid_size=int(f.attrs["grid_size"]),
            row=f["row"][:],
            col=f["col"][:],
            count=f["count"][:],
            mean=f["mean"][:],
            class_histogram=f["class_histogram"][:],
            points_total=int(f.attrs["points_total"]),
        )


def read_top_class(path: Path | str, card_classes: list[str]) -> tuple[np.ndarray | None, str | None]:
    """Each kept cell's top class as a logit index, and what chose it: its most attributed class
    ("attribution"), else its most frequent label, where the dataset's classes name the card's logits
    ("label"); (None, None) when neither can."""
    with open_h5(path) as f:
        if "top_classes" in f:
            return f["top_classes"][:, 0].astype(np.int64), "attribution"
        to_logit = dataset_to_logits(json.loads(f.attrs["classes"]), card_classes)
        if to_logit is None:
            return None, None
        return to_logit[f["class_histogram"][:].argmax(axis=1)], "label"


def count_cells(path: Path | str) -> int:
    with open_h5(path) as f:
        return len(f["count"])


def read_cell_counts(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and activation count of each kept cell."""
    with open_h5(path) as f:
        return f["row"][:], f["col"][:], f["count"][:]


@dataclass
class CellSummary:
    """What the viewer needs of a cells file: everything but the mean vectors."""

    row: np.ndarray
    col: np.ndarray
    count: np.ndarray
    class_histogram: np.ndarray
    sample_images: np.ndarray
    mean_attribution: np.ndarray | None
    classes: list[str]
    grid_size: int
    atom: np.ndarray | None  # a feature atlas's: each cell's atom
    sample_positions: np.ndarray | None  # and its samples' (row, col, H, W) in the layer's map


def read_cell_summary(path: Path | str) -> CellSummary:
    with open_h5(path) as f:
        return CellSummary(
            row=f["row"][:],
            col=f["col"][:],
            count=f["count"][:],
            class_histogram=f["class_histogram"][:],
            sample_images=f["sample_images"][:],
            mean_attribution=f["mean_attribution"][:] if "mean_attribution" in f else None,
            classes=json.loads(f.attrs["classes"]),
            grid_size=int(f.attrs["grid_size"]),
            atom=f["atom"][:] if "atom" in f else None,
            sample_positions=f["sample_positions"][:] if "sample_positions" in f else None,
        )
