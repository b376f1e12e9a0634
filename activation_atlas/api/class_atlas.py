"""Class atlases and comparisons: the activations most attributed to one class, or to either of two,
selected, laid out, binned, rendered and drawn by the stage functions of the workflow's class_cells,
class_icons and class_montage jobs."""

from __future__ import annotations

from activation_atlas.api import results
from activation_atlas.api.config import checked, with_settings
from activation_atlas.api.method import check_layer, render_chunk
from activation_atlas.api.progress import progress
from activation_atlas.workflow import settings


def class_atlas(
    model,
    layer: str,
    activations: results.Activations,
    cls,
    *,
    top_n: int | None = None,
    grid: int | None = None,
    min_count: int | None = None,
    render: dict | None = None,
    verbose: bool = False,
    progress_bar: bool = True,
) -> results.ClassAtlas:
    """The class activation atlas of class `cls` (a logit's name or index) in `layer`: the activations
    most attributed to it, laid out by UMAP, binned, rendered and drawn. The activations must carry
    attributions (extract(..., attribution=True)).

    top_n, grid (its grid size), min_count: the class_atlas section's settings; render: a mapping of
    render settings. Returns a ClassAtlas.
    """
    return selected_atlas(model, layer, activations, [cls], top_n, grid, min_count, render, verbose, progress_bar)


def comparison(
    model,
    layer: str,
    activations: results.Activations,
    a,
    b,
    *,
    top_n: int | None = None,
    grid: int | None = None,
    min_count: int | None = None,
    render: dict | None = None,
    verbose: bool = False,
    progress_bar: bool = True,
) -> results.ClassAtlas:
    """The comparison of classes a and b in `layer`: the activations most attributed to either, placed
    at x = their attribution to a minus to b and y = a 1-D UMAP, binned, rendered and drawn.

    top_n, grid, min_count, render: as class_atlas takes them. Returns a ClassAtlas.
    """
    return selected_atlas(model, layer, activations, [a, b], top_n, grid, min_count, render, verbose, progress_bar)


def selected_atlas(model, layer, acts, classes, top_n, grid, min_count, render, verbose, progress_bar):
    """A class atlas (one class) or a comparison (two): the class_cells, class_icons and class_montage
    jobs of the workflow."""
    from activation_atlas.algorithms.class_atlas import class_slug, comparison_slug
    from activation_atlas.stages.atlas import Montage
    from activation_atlas.stages.atlas import montage as draw
    from activation_atlas.stages.class_atlas import Selection, class_cells

    net = acts._network_for(model)
    check_layer(layer, acts)
    configured = acts.config["class_atlas"]["layer"] or acts.layers[-1]  # written only when it differs
    section = {
        "layer": None if layer == configured else layer,
        "top_n": top_n,
        "grid_size": grid,
        "min_count": min_count,
    }
    named = {"classes": [classes[0]]} if len(classes) == 1 else {"comparisons": [list(classes)]}
    full = checked(with_settings(acts.given, {}, {"class_atlas": {**section, **named}, "render": render or {}}))
    slug = class_slug(str(classes[0])) if len(classes) == 1 else comparison_slug(classes)
    files, ca = acts.files, full["class_atlas"]
    with progress(3, verbose, progress_bar) as log:
        log.step("select and lay out")
        selection = Selection(
            seed=full["seed"],
            layer=layer,
            classes=list(classes),
            umap=settings.umap_settings(full, layer),
            scatter_size=full["layout"]["scatter_size"],
            samples_per_cell=full["grid"]["samples_per_cell"],
            class_atlas=ca,
        )
        cells = files.class_atlas(slug, "cells.h5")
        class_cells(
            files.activations(layer),
            files.model_card,
            files.class_atlas(slug, "layout.h5"),
            files.class_atlas(slug, "layout.png"),
            cells,
            selection,
            log,
        )
        log.step("icons")
        render_chunk(acts, net, full, layer, ca["grid_size"], None, cells, files.class_atlas(slug, "icons.h5"), log)
        log.step("montage")
        draw(
            files.class_atlas(slug, "icons.h5"),
            cells,
            files.class_atlas(slug, "atlas.png"),
            files.class_atlas(slug, "tiles"),
            Montage(**full["montage"]),
            log,
        )
    acts.class_atlases[slug] = (list(classes), layer, ca["grid_size"])
    return results.ClassAtlas(acts, layer, slug, list(classes))
