"""The interactive viewer: a static HTML page per run that pans and zooms over the atlas tiles.

Everything the page needs is written into the run's folder — the page (viewer.html), its script,
style and data (viewer/) and thumbnail sheets of the sample images — and the tiles the montage
rules wrote (atlas/<layer>/tiles/grid<G>/, class_atlas/<name>/tiles/) are referenced relatively.
So the page works opened from disk, with no network; copy the whole results/<run> folder to share it.
The data is a script (viewer/data.js), not JSON, because browsers refuse fetch() on file:// pages.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from activation_atlas.algorithms.attacks import crop_origin
from activation_atlas.algorithms.dictionary import SaeEncoder
from activation_atlas.algorithms.montage import tile_layout
from activation_atlas.data.image_folder import load_image
from activation_atlas.formats.cells import CellSummary, read_cell_summary
from activation_atlas.formats.dictionary import read_dictionary
from activation_atlas.runtime import atomic_output, write_text
from activation_atlas.viewer_page.features import layer_ties

STATIC = Path(__file__).parent / "static"
THUMBNAILS_PER_SHEET_SIDE = 16
CROP_CELLS = 4  # a top activation's crop spans this many cells of the layer's map


@dataclass(frozen=True)
class AtlasSource:
    """One entry of the viewer's atlas chooser: its zoom levels as (grid size, cells file, tile folder);
    `partner`: the id of an atlas on the same map (an aligned atlas's other member), which the page
    switches to at the same view; with `dictionary`, a layer's atlas whose cells list their strongest
    atoms, or with `features_of` too, that dictionary's feature atlas, whose atoms list their cells."""

    id: str
    title: str
    levels: tuple[tuple[int | None, Path, Path], ...]  # a feature atlas's grid: its cells file's
    partner: str | None = None
    dictionary: Path | None = None  # the layer's dictionary, where it has one
    features_of: str | None = None  # a feature atlas's: the id of its layer's atlas


@dataclass(frozen=True)
class PageOptions:
    run: str
    cell_px: int  # the montage's
    tile_px: int
    background: list[int]
    min_icon_px: int  # the viewer section's
    sample_px: int
    filter_top_k: int
    resize: str  # how sample images are fitted to their thumbnails (model.resize)


def cell_scores(cells: CellSummary, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell its top_k classes and their scores: mean attribution where the cells hold one, else the
    share of the cell's activations with each label. (M, k) indices and values."""
    if cells.mean_attribution is not None:
        scores = cells.mean_attribution.astype(np.float64)
    else:
        histogram = cells.class_histogram.astype(np.float64)
        scores = histogram / np.maximum(histogram.sum(axis=1, keepdims=True), 1.0)
    k = min(top_k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def level_data(
    grid_size: int,
    cells: CellSummary,
    tiles_dir: str,
    cell_px: int,
    tile_px: int,
    top_k: int,
    sample_ids: dict[tuple, int],
    ties: dict,
) -> dict:
    """One zoom level: its tiles and per kept cell row, col, count, top classes and sample thumbnails,
    with `ties` (per cell lists: a layer's "atoms", a feature atlas's "atom", "frequency", "strong_in")."""
    top, values = cell_scores(cells, top_k)
    tile_cells, tiles_per_side = tile_layout(grid_size, cell_px, tile_px)
    return {
        "grid": grid_size,
        "tiles": tiles_dir,
        "tile_cells": tile_cells,
        "tiles_per_side": tiles_per_side,
        "row": cells.row.tolist(),
        "col": cells.col.tolist(),
        "count": cells.count.tolist(),
        "top": [[[int(c), float(f"{v:.4g}")] for c, v in zip(cs, vs)] for cs, vs in zip(top, values)],
        "samples": [[sample_ids[key] for key in row] for row in sample_keys_of(cells)],
        **ties,
    }


def level_ties(atlas: AtlasSource, grid: int, cells: CellSummary, layer_atoms: dict, dictionaries: dict) -> dict:
    """A level's ties to a dictionary (level_data): a layer's cells' strongest atoms; a feature atlas's
    atoms, how often each fires and the cells of its layer's atlas where each is strongest."""
    if atlas.dictionary is None:
        return {}
    if atlas.features_of is None:
        return {"atoms": layer_atoms[atlas.id][0][grid]}
    frequency = dictionaries[atlas.dictionary].statistics.frequency
    strongest_cells = layer_atoms[atlas.features_of][1] if atlas.features_of in layer_atoms else {}
    return {
        "atom": cells.atom.tolist(),
        "frequency": [float(f"{frequency[a]:.4g}") for a in cells.atom],
        "strong_in": [strongest_cells.get(int(a), []) for a in cells.atom],
    }


def sample_keys_of(cells: CellSummary) -> list[list[tuple]]:
    """Per cell, its sample thumbnails' keys: (image,) for a whole image, or (image, row, col, H, W) for a
    crop around the activation at (row, col) of the layer's H×W map (a feature atlas's top activations)."""
    keys = []
    for k, images in enumerate(cells.sample_images):
        positions = cells.sample_positions[k] if cells.sample_positions is not None else [()] * len(images)
        keys.append([(int(i), *map(int, p)) for i, p in zip(images, positions) if i >= 0])
    return keys


def sample_keys(summaries) -> list[tuple]:
    """The sorted distinct thumbnails of any cell of the CellSummary's (sample_keys_of)."""
    return sorted({key for cells in summaries for row in sample_keys_of(cells) for key in row})


def crop_fraction(grid_hw) -> float:
    """The side of a top activation's crop, as a fraction of the image's: CROP_CELLS cells of the layer's
    map, at least a quarter of the image, at most all of it."""
    return min(1.0, max(0.25, CROP_CELLS / max(int(grid_hw[1]), 1)))


def thumbnail(path: Path, key: tuple, sample_px: int, resize_policy: str) -> np.ndarray:
    """The (sample_px, sample_px, 3) thumbnail of a sample key: the image, or its crop."""
    if len(key) == 1:
        return load_image(path, sample_px, resize_policy)
    position, grid_hw = key[1:3], key[3:5]
    side = round(sample_px / crop_fraction(grid_hw))
    top, left = crop_origin(position, grid_hw, side, sample_px)
    return load_image(path, side, resize_policy)[top : top + sample_px, left : left + sample_px]


def write_thumbnail_sheets(
    dataset_paths: list[Path], keys: list[tuple], sample_px: int, resize_policy: str, out_dir: Path, log
) -> int:
    """Thumbnails of the sample keys (sample_keys_of), THUMBNAILS_PER_SHEET_SIDE² to a JPEG sheet
    (samples/sheet<k>.jpg), in order; returns the number of sheets."""
    side = THUMBNAILS_PER_SHEET_SIDE
    per_sheet = side * side
    sheets = -(-len(keys) // per_sheet)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    for sheet in range(sheets):
        canvas = Image.new("RGB", (side * sample_px, side * sample_px), (255, 255, 255))
        for k, key in enumerate(keys[sheet * per_sheet : (sheet + 1) * per_sheet]):
            pixels = thumbnail(dataset_paths[key[0]], key, sample_px, resize_policy)
            canvas.paste(Image.fromarray(pixels), ((k % side) * sample_px, (k // side) * sample_px))
        canvas.save(out_dir / "samples" / f"sheet{sheet}.jpg", format="JPEG", quality=85)
        log(f"sample sheet {sheet + 1}/{sheets}")
    return sheets


def write_viewer(
    run_dir,
    atlases: list[AtlasSource],
    card: dict,
    dataset_paths: list[Path],
    out_html,
    assets_out,
    page: PageOptions,
    log,
) -> None:
    """Write viewer.html and its folder of script, style, data and sample sheets into the run folder."""
    run_dir = Path(run_dir)
    assets = Path(os.path.relpath(assets_out, run_dir)).as_posix()
    summaries = {cells: read_cell_summary(cells) for atlas in atlases for _, cells, _ in atlas.levels}
    with atomic_output(assets_out) as partial:
        partial.mkdir()
        keys = sample_keys(summaries.values()) if page.sample_px else []
        sheets = write_thumbnail_sheets(dataset_paths, keys, page.sample_px, page.resize, partial, log) if keys else 0
        sample_ids = {key: k for k, key in enumerate(keys)}
        dictionaries = {atlas.dictionary: read_dictionary(atlas.dictionary) for atlas in atlases if atlas.dictionary}
        layer_atoms = {
            atlas.id: layer_ties(
                [(grid, cells) for grid, cells, _ in sorted(atlas.levels)],
                SaeEncoder.of(dictionaries[atlas.dictionary].sae, "cpu"),
            )
            for atlas in atlases
            if atlas.dictionary is not None and atlas.features_of is None
        }
        entries = []
        for atlas in atlases:
            levels = sorted((grid or summaries[cells].grid_size, cells, tiles) for grid, cells, tiles in atlas.levels)
            levels = [
                level_data(
                    grid,
                    summaries[cells],
                    Path(os.path.relpath(tiles, run_dir)).as_posix(),
                    page.cell_px,
                    page.tile_px,
                    page.filter_top_k,
                    sample_ids,
                    level_ties(atlas, grid, summaries[cells], layer_atoms, dictionaries),
                )
                for grid, cells, tiles in levels
            ]
            entries.append(
                {
                    "id": atlas.id,
                    "title": atlas.title,
                    "levels": levels,
                    **({"partner": atlas.partner} if atlas.partner else {}),
                    **({"features_of": atlas.features_of} if atlas.features_of else {}),
                }
            )
            log(f"{atlas.title}: {len(levels)} zoom level(s), {sum(len(level['row']) for level in levels)} icons")
        first = summaries[atlases[0].levels[0][1]]
        attributed = first.mean_attribution is not None
        data = {
            "run": page.run,
            "model": card["model"],
            "classes": card["classes"] if attributed else first.classes,
            "score": "mean attribution (h · ∂logit/∂h)" if attributed else "share of the cell's activations",
            "assets": assets,
            "cell_px": page.cell_px,
            "background": page.background,
            "min_icon_px": page.min_icon_px,
            "samples": {"sheets": sheets, "per_side": THUMBNAILS_PER_SHEET_SIDE, "px": page.sample_px},
            "atlases": entries,
        }
        (partial / "data.js").write_text(
            "window.ATLAS_VIEWER_DATA = " + json.dumps(data, separators=(",", ":"), sort_keys=True) + ";\n"
        )
        for name in ("viewer.js", "viewer.css"):
            shutil.copyfile(STATIC / name, partial / name)
    html_page = (
        (STATIC / "viewer.html")
        .read_text()
        .replace("{{TITLE}}", html.escape(f"Activation atlas — {page.run} ({data['model']})"))
    )
    write_text(out_html, html_page.replace("{{ASSETS}}", assets))
    log(f"wrote {out_html}: {len(entries)} atlases, {len(keys)} sample thumbnails on {sheets} sheet(s)")
