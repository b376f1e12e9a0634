"""Stage cells (rules/cells.smk): a G×G grid over one layer's layout, its kept cells and their means."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activation_atlas.algorithms.binning import EmptyGrid, bin_layout, cell_samples, summarise_attributions
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import write_cells
from activation_atlas.formats.layout import read_xy
from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError, derive_seed


@dataclass(frozen=True)
class Binning:
    seed: int
    layer: str
    grid_size: int
    grid: dict  # the grid section: min_count, samples_per_cell (recorded in the file)


def bin_cells(activations_path, layout_path, model_card, cells_out, settings: Binning, log) -> None:
    """One grid of one layer. Activations and attributions are read from their file in blocks."""
    xy = read_xy(layout_path)
    min_count, grid_size = settings.grid["min_count"], settings.grid_size
    with ActivationFile(activations_path) as acts:
        classes = acts.classes
        try:
            cells = bin_layout(xy, acts.activations, acts.labels, grid_size, min_count, len(classes))
        except EmptyGrid as error:
            advice = f"lower grid.min_count or drop {grid_size} from grid.sizes"
            raise RunError(f"{settings.layer}: {error}: {advice}") from None
        log(
            f"{settings.layer} grid {grid_size}: {len(cells.count)} cells with more than {min_count} points "
            f"hold {cells.kept_fraction:.1%} of {len(xy)} points"
        )
        rng = np.random.default_rng(derive_seed(settings.seed, "samples", settings.layer, grid_size))
        samples = cell_samples(xy, cells, acts.image_index, settings.grid["samples_per_cell"], rng)
        attributions = (
            summarise_attributions(
                xy, cells, acts.attribution, acts.attribution_class, read_card(model_card)["classes"]
            )
            if acts.attribution is not None
            else None
        )
    write_cells(
        cells_out,
        cells,
        samples,
        attributions,
        min_count,
        layer=settings.layer,
        seed=settings.seed,
        classes=list(classes),
        config={"grid": settings.grid},
    )
