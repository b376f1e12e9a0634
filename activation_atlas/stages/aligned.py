"""Stage aligned (rules/aligned.smk): the joint layout of two members' activations, the two atlases
side by side in one image, and the figures of each member's icons."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from activation_atlas.algorithms.aligned import joint_vectors
from activation_atlas.algorithms.binning import PURE_CELL, agreement
from activation_atlas.algorithms.layout import lay_out, plot_layout
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import read_cells, read_top_class
from activation_atlas.formats.icons import IconsFile
from activation_atlas.formats.layout import write_layout
from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError, derive_seed, write_bytes, write_json

# Pixels between the two atlases, the height of the band of titles above them, and the titles' size.
GAP_PX, TITLE_PX, FONT_PX = 16, 28, 18


@dataclass(frozen=True)
class JointLayout:
    seed: int
    titles: list[str]  # the members', in order
    umap: dict  # the layout section's UMAP settings
    scatter_size: int


def joint_layout(activation_paths: list, layout_out, scatter_out, settings: JointLayout, log) -> None:
    """One UMAP of both members' rows (aligned.joint_vectors); the members must hold the same images
    in the same order."""
    vectors, first_index = [], None
    for path, title in zip(activation_paths, settings.titles):
        with ActivationFile(path) as acts:
            if first_index is None:
                first_index, labels, classes = acts.image_index, acts.labels, acts.classes
            elif not np.array_equal(acts.image_index, first_index):
                raise RunError(
                    f"{path} holds other images, or another order, than {activation_paths[0]}: "
                    "the members must read the same images"
                )
            vectors.append(acts.activations[:])
            log(f"{title}: {vectors[-1].shape[0]} activations of {vectors[-1].shape[1]} channels")
    joint = joint_vectors(vectors)
    raw, xy = lay_out(joint, settings.umap, derive_seed(settings.seed, "layout", "aligned"), log)
    write_layout(layout_out, raw, xy, settings.umap, layer=" + ".join(settings.titles), seed=settings.seed)
    plot_layout(
        xy,
        labels,
        classes,
        scatter_out,
        f"{' + '.join(settings.titles)}: joint UMAP of {len(xy)} activations",
        settings.scatter_size,
    )


@dataclass(frozen=True)
class SideBySide:
    titles: list[str]
    background: list[int]


def side_by_side(atlas_paths: list, image_out, settings: SideBySide, log) -> None:
    """The members' atlas images next to each other, each under its title."""
    atlases = []
    for path in atlas_paths:
        with Image.open(path) as image:
            atlases.append(image.convert("RGB"))
    height = max(a.height for a in atlases)
    width = sum(a.width for a in atlases) + GAP_PX * (len(atlases) - 1)
    canvas = Image.new("RGB", (width, height + TITLE_PX), tuple(settings.background))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=FONT_PX)  # Pillow's own font: the same pixels on every machine
    left = 0
    for atlas, title in zip(atlases, settings.titles):
        canvas.paste(atlas, (left, TITLE_PX))
        draw.text((left + 4, 4), title, fill=(0, 0, 0), font=font)
        left += atlas.width + GAP_PX
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    write_bytes(image_out, buffer.getvalue())
    log(f"wrote {image_out}: {width}×{height + TITLE_PX} px")


@dataclass(frozen=True)
class AlignedFigures:
    titles: list[str]
    grids: list[int]


def aligned_metrics(
    icons_paths: list, cells_paths: list, card_paths: list, metrics_out, settings: AlignedFigures, log
) -> None:
    """Per member and grid: cells, mean and lowest icon fidelity, and how often the member's model
    classifies an icon as its cell's top class (all cells, and cells of purity ≥ 0.5)."""
    figures = {}
    per_member = len(settings.grids)
    for m, title in enumerate(settings.titles):
        classes = read_card(card_paths[m])["classes"]
        figures[title] = {}
        for g, grid in enumerate(settings.grids):
            k = m * per_member + g
            cell_class, _ = read_top_class(cells_paths[k], classes)
            cells = read_cells(cells_paths[k])
            with IconsFile(icons_paths[k]) as icons:
                fidelity, icon_class = icons.fidelity, icons.icon_class
            everywhere = np.ones(len(fidelity), bool)
            figures[title][str(grid)] = {
                "cells": int(len(fidelity)),
                "mean_icon_fidelity": round(float(fidelity.mean()), 6),
                "min_icon_fidelity": round(float(fidelity.min()), 6),
                "class_agreement": agreement(icon_class, cell_class, everywhere),
                "class_agreement_in_pure_cells": agreement(icon_class, cell_class, cells.purity >= PURE_CELL),
            }
            log(f"{title}, grid {grid}: {figures[title][str(grid)]}")
    write_json(metrics_out, {"members": settings.titles, "grids": figures})
