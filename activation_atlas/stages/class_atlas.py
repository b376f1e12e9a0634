"""Stage class_atlas (rules/class_atlas.smk): the activations of a class atlas (one class) or of a
comparison (two classes), selected by attribution, laid out and binned; they are rendered and drawn
by the render and atlas stages' rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activation_atlas.algorithms.binning import EmptyGrid, bin_layout, cell_samples, summarise_attributions
from activation_atlas.algorithms.class_atlas import lay_out_comparison, resolve_class, select
from activation_atlas.algorithms.layout import lay_out, plot_layout
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import write_cells
from activation_atlas.formats.layout import write_layout
from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError, derive_seed


@dataclass(frozen=True)
class Selection:
    seed: int
    layer: str  # the class atlases' layer
    classes: list  # one class (a class atlas) or two (a comparison): names or logit indices
    umap: dict  # the layer's UMAP settings
    scatter_size: int
    samples_per_cell: int
    class_atlas: dict  # the class_atlas section: top_n, grid_size, min_count (recorded in the file)


def class_cells(activations_path, model_card, layout_out, scatter_out, cells_out, settings: Selection, log) -> None:
    """Select a class atlas's or a comparison's activations, lay them out and bin them.

    A class atlas is a 2-D UMAP of its activations. A comparison of classes a and b puts each activation
    at x = its attribution to a minus to b (normalised to [−1, 1]) and y = a 1-D UMAP.
    """
    layer, ca = settings.layer, settings.class_atlas
    logit_names = read_card(model_card)["classes"]
    indices = [resolve_class(spec, logit_names) for spec in settings.classes]
    names = [logit_names[index] for index in indices]
    comparison = len(indices) == 2
    if comparison and indices[0] == indices[1]:
        raise RunError(f"class_atlas.comparisons: {settings.classes} names the same class twice")
    description = (
        f"{names[0]!r} vs {names[1]!r} in {layer}"
        if comparison
        else f"class {names[0]!r} (index {indices[0]}) in {layer}"
    )
    with ActivationFile(activations_path) as f:
        attribution, attribution_class = f.read_attributions()
        rows = select(attribution, attribution_class, indices, ca["top_n"])
        log(f"{description}: {len(rows)} of {len(f)} activations selected")
        if len(rows) < 3:
            raise RunError(
                f"only {len(rows)} activations selected for {description}: too few to lay out; raise class_atlas.top_n"
            )
        acts, labels, image_index = f.read_rows(rows)
        classes = f.classes
    attribution = attribution[rows]
    attribution_class = attribution_class[rows] if attribution_class is not None else None
    n = len(acts)
    umap = dict(settings.umap, n_neighbors=min(settings.umap["n_neighbors"], n - 1))
    seed_names = ("comparison", layer, *indices) if comparison else ("class_atlas", layer, indices[0])
    seed = derive_seed(settings.seed, *seed_names)
    if comparison:
        raw, xy = lay_out_comparison(acts, attribution, attribution_class, *indices, umap, seed, log)
        provenance = {
            "layer": layer,
            "seed": settings.seed,
            "class_index": indices,
            "class_name": names,
            "x_axis": f"attribution to {names[0]} minus to {names[1]}, normalised to [-1, 1] "
            f"(x = 0: {names[1]}, x = 1: {names[0]})",
            "y_axis": "1-D UMAP of the activations",
        }
        title = f"{layer}: {names[1]} ← attribution → {names[0]} ({n} activations)"
    else:
        raw, xy = lay_out(acts, umap, seed, log)
        provenance = {"layer": layer, "seed": settings.seed, "class_index": indices[0], "class_name": names[0]}
        title = f"{layer}, class {names[0]}: {n} activations"
    write_layout(layout_out, raw, xy, umap, **provenance)
    plot_layout(xy, labels, classes, scatter_out, title, settings.scatter_size)
    try:
        cells = bin_layout(xy, acts, labels, ca["grid_size"], ca["min_count"], len(classes))
    except EmptyGrid as error:
        raise RunError(f"{title}: {error}: lower class_atlas.min_count or class_atlas.grid_size") from None
    log(f"grid {ca['grid_size']}: {len(cells.count)} cells kept")
    rng = np.random.default_rng(derive_seed(settings.seed, "samples", *seed_names))
    samples = cell_samples(xy, cells, image_index, settings.samples_per_cell, rng)
    attributions = summarise_attributions(xy, cells, attribution, attribution_class, logit_names)
    write_cells(
        cells_out,
        cells,
        samples,
        attributions,
        ca["min_count"],
        classes=list(classes),
        config={"class_atlas": ca},
        **provenance,
    )
