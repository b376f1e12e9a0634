"""Stage atlas (rules/atlas.smk): an atlas image and its tiles from the icons of a grid, and the
quality figures of one layer's atlases."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from activation_atlas.algorithms.binning import PURE_CELL, agreement
from activation_atlas.algorithms.montage import (
    atlas_image,
    density_factors,
    tile_layout,
    tile_name,
    trustworthiness_on_sample,
)
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import read_cell_counts, read_cells, read_top_class
from activation_atlas.formats.icons import IconsFile
from activation_atlas.formats.layout import read_xy
from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError, atomic_output, derive_seed, write_bytes, write_json


@dataclass(frozen=True)
class Montage:
    """The montage section."""

    cell_px: int
    background: list[int]
    density: str
    density_floor: float
    tile_px: int
    max_image_px: int


def montage(icons_path, cells_path, atlas_out, tiles_out, settings: Montage, log) -> None:
    """The atlas as tiles (PNGs of tile_px, whole cells) and as one image assembled from them, downscaled
    to at most max_image_px: no step holds more than one full-resolution tile."""
    cell_px, background = settings.cell_px, tuple(settings.background)
    cell_rows, cell_cols, counts = read_cell_counts(cells_path)
    with IconsFile(icons_path) as icons, atomic_output(tiles_out) as partial:
        grid_size, rows, cols = icons.grid_size, icons.row, icons.col
        if not (np.array_equal(rows, cell_rows) and np.array_equal(cols, cell_cols)):
            raise RunError(f"{icons_path} and {cells_path} hold different cells: re-run the render rule")
        factors = density_factors(counts, settings.density_floor)
        tile_cells, tiles_per_side = tile_layout(grid_size, cell_px, settings.tile_px)
        side = grid_size * cell_px
        scale = min(1.0, settings.max_image_px / side)
        overview = Image.new("RGB", (round(side * scale),) * 2, background)
        partial.mkdir()
        image_rows = grid_size - 1 - rows  # tiles count rows from the top of the image
        for tile_row in range(tiles_per_side):
            for tile_col in range(tiles_per_side):
                r0, c0 = tile_row * tile_cells, tile_col * tile_cells
                n_rows, n_cols = min(tile_cells, grid_size - r0), min(tile_cells, grid_size - c0)
                inside = np.flatnonzero(
                    (image_rows >= r0) & (image_rows < r0 + n_rows) & (cols >= c0) & (cols < c0 + n_cols)
                )
                tile_icons = icons.icons[inside] if len(inside) else np.zeros((0, 1, 1, 3), np.uint8)
                tile = atlas_image(
                    tile_icons,
                    rows[inside],
                    cols[inside],
                    grid_size,
                    cell_px,
                    background,
                    factors[inside],
                    settings.density,
                    r0,
                    c0,
                    n_rows,
                    n_cols,
                )
                tile.save(partial / tile_name(tile_row, tile_col), format="PNG")
                left, top = (int(c0 * cell_px * scale), int(r0 * cell_px * scale))
                right, bottom = (int((c0 + n_cols) * cell_px * scale), int((r0 + n_rows) * cell_px * scale))
                if scale < 1.0:
                    tile = tile.resize((right - left, bottom - top), Image.LANCZOS)
                overview.paste(tile, (left, top))
            log(f"tile row {tile_row + 1}/{tiles_per_side} done")
        buffer = io.BytesIO()
        overview.save(buffer, format="PNG")
        write_bytes(atlas_out, buffer.getvalue())
    log(
        f"{len(rows)} icons on a {grid_size}×{grid_size} grid: {tiles_per_side}² tiles of {tile_cells}² cells"
        f" in {tiles_out}; atlas image {overview.width} px" + (f" (downscaled ×{scale:.3f})" if scale < 1 else "")
    )


@dataclass(frozen=True)
class Metrics:
    seed: int
    layer: str
    grids: list[int]
    metric: str  # the layer's UMAP metric: trustworthiness is measured in it
    trustworthiness_sample: int
    trustworthiness_neighbors: int


def atlas_metrics(
    run_card, activations_path, layout_path, cells_paths: list, icons_paths: list, metrics_out, settings: Metrics, log
) -> None:
    """Model accuracy, layout trustworthiness and per grid the cells kept, purity, icon fidelity and
    class agreement (icons the model classifies as their cell's top class); cells_paths and icons_paths
    in the order of settings.grids."""
    card = read_card(run_card)
    with ActivationFile(activations_path) as f:
        acts = f.activations[:]
    xy = read_xy(layout_path)
    seed = derive_seed(settings.seed, "metrics", settings.layer)
    trust = trustworthiness_on_sample(
        acts, xy, settings.trustworthiness_sample, settings.trustworthiness_neighbors, settings.metric, seed
    )
    grids = {}
    for grid_size, cells_path, icons_path in sorted(zip(settings.grids, cells_paths, icons_paths)):
        cells = read_cells(cells_path)
        cell_class, chosen_by = read_top_class(cells_path, card["classes"])
        with IconsFile(icons_path) as icons:
            fidelity, icon_class, steps = icons.fidelity, icons.icon_class, icons.steps
        pure = cells.purity >= PURE_CELL
        grids[str(grid_size)] = {
            "cells_kept": int(len(cells.count)),
            "fraction_of_points_in_kept_cells": round(cells.kept_fraction, 6),
            "mean_cell_class_purity": round(float(cells.purity.mean()), 6) if len(cells.count) else None,
            "mean_icon_fidelity": round(float(fidelity.mean()), 6) if len(fidelity) else None,
            "min_icon_fidelity": round(float(fidelity.min()), 6) if len(fidelity) else None,
            "cell_top_class_by": chosen_by,
            "class_agreement": agreement(icon_class, cell_class, np.ones(len(icon_class), bool)),
            "pure_cells": int(pure.sum()),
            "class_agreement_in_pure_cells": agreement(icon_class, cell_class, pure),
        }
        if steps is not None and len(steps):  # rendered with a stopping rule
            grids[str(grid_size)]["mean_icon_steps"] = round(float(steps.mean()), 3)
    result = {
        "layer": settings.layer,
        "model": card["model"],
        "activations": int(len(acts)),
        "channels": int(acts.shape[1]),
        "model_held_out_accuracy": card["held_out_accuracy"],
        "model_accuracy_on_extracted_images": card["extracted_accuracy"],
        "layout_trustworthiness": round(trust, 6),
        "trustworthiness_sample": int(min(settings.trustworthiness_sample, len(acts))),
        "grids": grids,
    }
    log(json.dumps(result, indent=2))
    write_json(metrics_out, result)
