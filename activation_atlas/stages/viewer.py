"""Stage viewer (rules/viewer.smk): the run's interactive page over every atlas it made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from activation_atlas.data.image_folder import ImageSelection, select_images
from activation_atlas.formats.model_card import read_card
from activation_atlas.viewer_page.page import AtlasSource, PageOptions, write_viewer


@dataclass(frozen=True)
class Viewer:
    seed: int
    images: dict  # an ImageSelection: the images the activations came from
    atlases: list  # per atlas {"id", "title", "levels": [[grid size, cells file, tile folder], ...]} and, for
    # an aligned atlas's members, "partner": the other's id; for a layer with a dictionary "dictionary" (its
    # file), and for its feature atlas (grid size None: its cells file's) also "features_of" (its layer's id)
    page: dict  # a PageOptions


def viewer(run_dir, model_card, html_out, assets_out, settings: Viewer, log) -> None:
    """The viewer page in the run folder: every layer's atlases as zoom levels, then each class atlas
    and comparison."""
    folder = select_images(ImageSelection(**settings.images), settings.seed, log)
    viewer_of(run_dir, read_card(model_card), folder.files, html_out, assets_out, settings, log)


def viewer_of(run_dir, card: dict, image_files, html_out, assets_out, settings: Viewer, log) -> None:
    """viewer, with the files of the images the activations came from (their thumbnails: settings.images
    is not read; none, with page.sample_px 0)."""
    atlases = [
        AtlasSource(
            atlas["id"],
            atlas["title"],
            tuple((grid and int(grid), Path(cells), Path(tiles)) for grid, cells, tiles in atlas["levels"]),
            atlas.get("partner"),
            Path(atlas["dictionary"]) if atlas.get("dictionary") else None,
            atlas.get("features_of"),
        )
        for atlas in settings.atlases
    ]
    write_viewer(run_dir, atlases, card, image_files, html_out, assets_out, PageOptions(**settings.page), log)
