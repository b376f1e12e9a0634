"""Stage layout (rules/layout.smk): UMAP of one layer's activations, normalised, and its scatter plot."""

from __future__ import annotations

from dataclasses import dataclass

from activation_atlas.algorithms.layout import lay_out, plot_layout
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.layout import write_layout
from activation_atlas.runtime import derive_seed


@dataclass(frozen=True)
class Layout:
    seed: int
    layer: str
    umap: dict  # the layer's UMAP settings (layout section with its per-layer overrides)
    scatter_size: int  # side of the scatter plot, pixels


def layout(activations_path, layout_out, scatter_out, settings: Layout, log) -> None:
    with ActivationFile(activations_path) as acts:
        labels, classes = acts.labels, acts.classes
        # The dataset, not an array: with layout.pca_dims it is reduced block by block.
        raw, xy = lay_out(acts.activations, settings.umap, derive_seed(settings.seed, "layout", settings.layer), log)
    log("layout done; writing coordinates and scatter plot")
    write_layout(layout_out, raw, xy, settings.umap, layer=settings.layer, seed=settings.seed)
    plot_layout(
        xy, labels, classes, scatter_out, f"{settings.layer}: UMAP of {len(xy)} activations", settings.scatter_size
    )
