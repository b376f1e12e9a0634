"""A G×G grid over the normalised layout: which points fall in which cell, and per-cell statistics.

Cell (row, col): col = ⌊x·G⌋ counts left to right, row = ⌊y·G⌋ counts from y = 0 upwards; each
cell is half-open [k/G, (k+1)/G) except the last, which also holds 1.0, so every point in [0, 1]²
lies in exactly one cell.
"""

from __future__ import annotations

import numpy as np

from activation_atlas.formats.cells import CellAttributions, Cells
from activation_atlas.runtime import RunError


def cell_coordinates(xy: np.ndarray, grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each point's cell; points must lie in [0, 1]²."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.size and (xy.min() < 0.0 or xy.max() > 1.0 or not np.isfinite(xy).all()):
        raise RunError("layout coordinates must lie in [0, 1]; normalise the layout first")
    cells = np.minimum(np.floor(xy * grid_size).astype(np.int64), grid_size - 1)
    return cells[:, 1], cells[:, 0]


BLOCK_ROWS = 1 << 16  # rows of activations or attributions read at a time


def block_sums(values, slot: np.ndarray, n_slots: int, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """(n_slots, C) float64 sums of the rows of `values` (an array or an HDF5 dataset, read block_rows
    at a time) by slot; rows with slot −1 are left out."""
    sums = np.zeros((n_slots, values.shape[1]))
    for start in range(0, len(slot), block_rows):
        block_slot = slot[start : start + block_rows]
        wanted = np.flatnonzero(block_slot >= 0)
        if not len(wanted):
            continue
        order = wanted[np.argsort(block_slot[wanted], kind="stable")]
        ids, starts = np.unique(block_slot[order], return_index=True)
        block = np.asarray(values[start : start + len(block_slot)], dtype=np.float64)
        sums[ids] += np.add.reduceat(block[order], starts, axis=0)
    return sums


class EmptyGrid(RunError):
    """No cell of a grid holds enough points to be kept."""


def bin_layout(
    xy: np.ndarray, activations, labels: np.ndarray, grid_size: int, min_count: int, n_classes: int
) -> Cells:
    """Mean activation, count and class histogram of every cell holding more than min_count points.

    `activations` may be an HDF5 dataset: it is read in blocks, so a million 512-d activations never
    sit in memory at once. Labels < 0 (unknown) are left out of the class histogram but not of the mean.
    """
    if grid_size < 1:
        raise RunError(f"grid size must be ≥ 1, got {grid_size}")
    if len(xy) != len(activations) or len(xy) != len(labels):
        raise RunError(
            f"layout ({len(xy)}), activations ({len(activations)}) and labels ({len(labels)}) differ in length"
        )
    row, col = cell_coordinates(xy, grid_size)
    flat = row * grid_size + col
    counts = np.bincount(flat, minlength=grid_size * grid_size)
    kept_ids = np.flatnonzero(counts > min_count)
    if len(kept_ids) == 0:
        raise EmptyGrid(
            f"no cell of the {grid_size}×{grid_size} grid holds more than {min_count} of the "
            f"{len(xy)} points (the fullest holds {counts.max(initial=0)})"
        )
    slot_of_cell = np.full(grid_size * grid_size, -1, dtype=np.int64)
    slot_of_cell[kept_ids] = np.arange(len(kept_ids))
    slot = slot_of_cell[flat]
    sums = block_sums(activations, slot, len(kept_ids))
    histogram = np.zeros((len(kept_ids), n_classes), dtype=np.int64)
    known = (labels >= 0) & (slot >= 0)
    np.add.at(histogram, (slot[known], labels[known]), 1)
    return Cells(
        grid_size=grid_size,
        row=(kept_ids // grid_size).astype(np.int32),
        col=(kept_ids % grid_size).astype(np.int32),
        count=counts[kept_ids].astype(np.int64),
        mean=(sums / np.maximum(counts[kept_ids], 1)[:, None]).astype(np.float32),
        class_histogram=histogram,
        points_total=len(xy),
    )


def kept_slots(xy: np.ndarray, cells: Cells) -> np.ndarray:
    """Each point's row in the kept cells, −1 for points in cells that were not kept."""
    row, col = cell_coordinates(xy, cells.grid_size)
    slot_of_cell = np.full(cells.grid_size * cells.grid_size, -1, dtype=np.int64)
    slot_of_cell[cells.row.astype(np.int64) * cells.grid_size + cells.col] = np.arange(len(cells.row))
    return slot_of_cell[row * cells.grid_size + col]


def cell_attributions(xy: np.ndarray, cells: Cells, attribution, attribution_class, n_classes: int, top: int = 5):
    """Per kept cell: the mean attribution to every class (M, K) and its `top` classes by that mean
    with their values (M, top).

    attribution is (N, K') for the N layout points (an array or an HDF5 dataset, read in blocks); with
    attribution_class (N, K') it holds each point's values for those classes only (the others count
    as 0 in the mean).
    """
    slot = kept_slots(xy, cells)
    if attribution_class is None:
        sums = block_sums(attribution, slot, len(cells.row))
    else:
        sums = np.zeros((len(cells.row), n_classes))
        for start in range(0, len(slot), BLOCK_ROWS):
            block_slot = slot[start : start + BLOCK_ROWS]
            wanted = block_slot >= 0
            values = np.asarray(attribution[start : start + BLOCK_ROWS], dtype=np.float64)[wanted]
            classes = np.asarray(attribution_class[start : start + BLOCK_ROWS])[wanted]
            np.add.at(sums, (np.repeat(block_slot[wanted], values.shape[1]), classes.ravel()), values.ravel())
    mean = sums / np.maximum(cells.count, 1)[:, None]
    return (mean.astype(np.float32), *top_classes(mean, top))


def top_classes(mean: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (M, K) mean attributions, its `top` classes by them (ties: the lower index) and their values."""
    order = np.argsort(-mean, axis=1, kind="stable")[:, :top]
    return order.astype(np.int32), np.take_along_axis(mean, order, 1).astype(np.float32)


def class_names_of(order: np.ndarray, class_names: list[str]) -> np.ndarray:
    return np.array([[class_names[c] for c in row] for row in order], dtype=object)


def named_attributions(mean: np.ndarray, class_names: list[str], top: int = 5) -> CellAttributions:
    """(M, K) mean attributions with each row's top classes, their values and their names."""
    order, values = top_classes(mean, top)
    return CellAttributions(mean.astype(np.float32), order, values, class_names_of(order, class_names))


def summarise_attributions(
    xy: np.ndarray, cells: Cells, attribution, attribution_class, class_names: list[str]
) -> CellAttributions:
    """cell_attributions, with the names of each cell's top classes."""
    mean, order, values = cell_attributions(xy, cells, attribution, attribution_class, len(class_names))
    return CellAttributions(mean, order, values, class_names_of(order, class_names))


def cell_samples(
    xy: np.ndarray, cells: Cells, image_index: np.ndarray, per_cell: int, rng: np.random.Generator
) -> np.ndarray:
    """(M, per_cell) indices of distinct images with an activation in each kept cell, drawn at random
    and sorted; −1 pads cells with fewer images."""
    row, col = cell_coordinates(xy, cells.grid_size)
    flat = row * cells.grid_size + col
    order = np.argsort(flat, kind="stable")
    cell_ids, starts, counts = np.unique(flat[order], return_index=True, return_counts=True)
    samples = np.full((len(cells.row), per_cell), -1, dtype=np.int64)
    where = np.searchsorted(cell_ids, cells.row.astype(np.int64) * cells.grid_size + cells.col)
    for k, group in enumerate(where):
        images = np.unique(image_index[order[starts[group] : starts[group] + counts[group]]])
        chosen = np.sort(rng.choice(images, size=min(per_cell, len(images)), replace=False))
        samples[k, : len(chosen)] = chosen
    return samples


# Cells at least this pure (their top label's share of their activations) count as "pure cells".
PURE_CELL = 0.5


def agreement(icon_class: np.ndarray, cell_class: np.ndarray | None, among: np.ndarray) -> float | None:
    """The fraction of the icons `among` whose top class by the model is their cell's top class."""
    if cell_class is None or not among.any():
        return None
    return round(float(np.mean(icon_class[among] == cell_class[among])), 6)


def distinct_cells(xy: np.ndarray, fill: float) -> tuple[int, np.ndarray, np.ndarray]:
    """A G×G grid of about n / fill cells and a cell of its own for each of the n points of a normalised
    layout: the placement that moves the points least in all (squared distance to their cell's centre,
    scipy's linear_sum_assignment). Returns G and each point's (row, col)."""
    from scipy.optimize import linear_sum_assignment

    grid_size = int(np.ceil(np.sqrt(len(xy) / fill)))
    centres = (np.arange(grid_size) + 0.5) / grid_size
    cell_x, cell_y = np.meshgrid(centres, centres)  # cell k = (row k // G, col k % G)
    cost = np.square(xy[:, :1] - cell_x.ravel()) + np.square(xy[:, 1:] - cell_y.ravel())
    points, cells = linear_sum_assignment(cost)
    cell_of = np.empty(len(xy), dtype=np.int64)
    cell_of[points] = cells
    return grid_size, cell_of // grid_size, cell_of % grid_size
