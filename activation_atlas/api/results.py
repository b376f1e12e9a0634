"""What the Python API returns: the activations of a run folder's layers, and the atlases drawn from
them. Each is a view of the workflow's files in its run folder (which verify, the viewer and the report
read); an atlas shows itself in Jupyter, and saves the run folder where asked."""

from __future__ import annotations

import base64
import functools
import html
import json
import shutil
from pathlib import Path

from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError


class Activations:
    """The activations of the layers of one extraction (made by extract), in a run folder, with the
    network they came from and the images they were read from."""

    def __init__(self, files, given: dict, config: dict, model, net, device: str, source, input_size: int):
        # The settings as the call gave them (the atlas calls add theirs and fill in the defaults again)
        # and as filled in.
        self.given, self.config = given, config
        self.files, self.model, self.net, self.device = files, model, net, device  # device: where net runs
        self.source, self.input_size = source, input_size
        # The atlases made from them: layer → grid sizes; a class atlas's slug → (classes, layer, grid size).
        self.atlases: dict[str, list[int]] = {}
        self.class_atlases: dict[str, tuple] = {}

    @property
    def layers(self) -> list[str]:
        """The layers extracted."""
        return list(self.config["layers"])

    @property
    def folder(self) -> Path:
        """The run folder its files are in."""
        return Path(self.files.root)

    @functools.cached_property
    def card(self) -> dict:
        """The run's model card: the logits' names, how each layer is read, the model's accuracy (read once:
        extract wrote it before making these)."""
        return read_card(self.files.model_card)

    def _network_for(self, model):
        """The network to render with: the one extracted from, when `model` is it."""
        if model is self.model or model is self.model.module:
            return self.net
        raise RunError(
            "the model given is not the one these activations were extracted from: render with the same model "
            "(or extract again with this one)"
        )

    def vectors(self, layer: str):
        """A layer's activation vectors (N, C) as a numpy array."""
        from activation_atlas.formats.activations import ActivationFile

        with ActivationFile(self.files.activations(layer)) as acts:
            return acts.activations[:]

    def save(self, folder) -> Path:
        """The run folder copied to `folder` (made if missing): everything made so far from these activations."""
        return copy_run(self.folder, Path(folder))

    def viewer(self) -> Path:
        """The viewer page over every atlas made from these activations (activation_atlas.viewer_page)."""
        from activation_atlas.api.method import viewer

        return viewer(self)

    def __repr__(self) -> str:
        from activation_atlas.formats.activations import ActivationFile

        card = self.card
        with ActivationFile(self.files.activations(self.layers[0])) as acts:
            vectors, images = len(acts), acts.images
        accuracy = card.get("extracted_accuracy")
        said = f", top-1 accuracy {accuracy:.3f}" if accuracy is not None else ""
        return (
            f"Activations of {', '.join(self.layers)}: {vectors} vectors a layer from {images} images "
            f"({len(card['classes'])} logits{said}) in {self.folder}"
        )


def copy_run(source: Path, target: Path) -> Path:
    if source.resolve() != target.resolve():
        shutil.copytree(source, target, dirs_exist_ok=True)
    return target


class Drawn:
    """What an atlas of either kind has: its image file (`image_path`), which Jupyter shows, and its run folder."""

    activations: Activations

    def image_path(self) -> Path:
        """The atlas image's file."""
        raise NotImplementedError

    def image(self):
        """The atlas image as a PIL image."""
        from PIL import Image

        with Image.open(self.image_path()) as image:
            return image.copy()

    def save(self, folder) -> Path:
        """The run folder copied to `folder`: the workflow's files of these activations and atlases."""
        return self.activations.save(folder)

    def _repr_png_(self) -> bytes:
        return self.image_path().read_bytes()

    def _repr_html_(self) -> str:
        figures = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in self.summary().items())
        image = base64.b64encode(self._repr_png_()).decode()
        caption = f"{html.escape(repr(self))}: {html.escape(figures)}"
        return f'<figure><img src="data:image/png;base64,{image}"/><figcaption>{caption}</figcaption></figure>'

    def summary(self) -> dict:
        """The figures its caption in Jupyter shows."""
        raise NotImplementedError


class Atlas(Drawn):
    """The atlas of one layer at one or more grid sizes: its image (the finest grid's), its figures."""

    def __init__(self, activations: Activations, layer: str, grids: list[int], config: dict):
        self.activations, self.layer, self.grids, self.config = activations, layer, list(grids), config

    @property
    def metrics(self) -> dict:
        """The layer's figures (atlas/<layer>/metrics.json): layout trustworthiness, per grid the cells
        kept, their purity, the icons' fidelity and class agreement."""
        return json.loads(Path(self.activations.files.metrics(self.layer)).read_text())

    def image_path(self, grid: int | None = None) -> Path:
        """The atlas image of a grid (default: the finest)."""
        return Path(self.activations.files.atlas(self.layer, grid or max(self.grids)))

    def summary(self) -> dict:
        """The finest grid's cells kept, mean icon fidelity and class agreement."""
        figures = self.metrics["grids"][str(max(self.grids))]
        return {key: figures[key] for key in ("cells_kept", "mean_icon_fidelity", "class_agreement")}

    def __repr__(self) -> str:
        return f"Atlas of {self.layer}, grid {' and '.join(map(str, self.grids))}, in {self.activations.folder}"


class ClassAtlas(Drawn):
    """A class atlas (one class) or a comparison (two): its image and its files."""

    def __init__(self, activations: Activations, layer: str, slug: str, classes: list):
        self.activations, self.layer, self.slug, self.classes = activations, layer, slug, classes

    def path(self, name: str) -> Path:
        """One of its files (class_atlas/<slug>/: layout.h5, cells.h5, icons.h5, atlas.png, tiles)."""
        return Path(self.activations.files.class_atlas(self.slug, name))

    def image_path(self) -> Path:
        """The atlas image's file (class_atlas/<slug>/atlas.png)."""
        return self.path("atlas.png")

    @property
    def metrics(self) -> dict:
        """How many activations were selected and cells kept, and the icons' fidelity."""
        from activation_atlas.formats.cells import read_cells
        from activation_atlas.formats.icons import IconsFile

        cells = read_cells(self.path("cells.h5"))
        with IconsFile(self.path("icons.h5")) as icons:
            fidelity = icons.fidelity
        return {
            "activations": int(cells.points_total),
            "cells_kept": int(len(cells.count)),
            "mean_icon_fidelity": round(float(fidelity.mean()), 6),
            "min_icon_fidelity": round(float(fidelity.min()), 6),
        }

    def summary(self) -> dict:
        """Its metrics."""
        return self.metrics

    def __repr__(self) -> str:
        what = f"class {self.classes[0]}" if len(self.classes) == 1 else f"{self.classes[0]} vs {self.classes[1]}"
        return f"Class atlas of {what} in {self.layer}, in {self.activations.folder}"
