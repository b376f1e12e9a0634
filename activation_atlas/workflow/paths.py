"""Where the workflow keeps its files, relative to the working directory: one place for the layout
that the rules, the aligned workflow, the benchmarks and the docs read.

results/<run>/      what a run makes; byte-identical from run to run (verify checks it)
logs/<run>/         rule logs, benchmark files, provenance: whatever varies between identical runs
resources/          datasets, model weights and cards, downloads: shared by the runs that use them

Every argument may be a value or a Snakemake wildcard ("{layer}"): the rules pass wildcards, the
scripts and benchmarks values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

RESOURCES = "resources"
# The files a patch attack keeps in its folder (RunFiles.attack).
ATTACK_FILES = ("images.json", "patches.h5", "results.h5", "table.json", "figure.png")
# The files a layer's dictionary keeps in its folder (RunFiles.dictionary).
DICTIONARY_FILES = (
    "dictionary.h5",
    "layout.h5",
    "layout.png",
    "cells.h5",
    "icons.h5",
    "atlas.png",
    "tiles",
    "neurons.h5",
    "neuron_icons.h5",
    "metrics.json",
)
# torchvision fetches published weights into $TORCH_HOME: kept with the other resources.
TORCH_HOME = f"{RESOURCES}/torch_home"


def dataset_dir(name: str) -> str:
    """A dataset the workflow generates or downloads."""
    return f"{RESOURCES}/datasets/{name}"


def download_path(url: str) -> str:
    """Where a downloaded archive is kept: under its file name in the URL (query left out)."""
    return f"{RESOURCES}/downloads/{os.path.basename(url.split('?')[0])}"


@dataclass(frozen=True)
class ModelFiles:
    """resources/models/<name>/: a model's weights and its card, shared by the runs of that model."""

    name: str

    @property
    def folder(self) -> str:
        return f"{RESOURCES}/models/{self.name}"

    @property
    def weights(self) -> str:
        """Weights the workflow trained or downloaded."""
        return f"{self.folder}/weights.pt"

    @property
    def weights_pin(self) -> str:
        """The sha256 of downloaded weights, recorded at their first download."""
        return f"{self.weights}.sha256"

    @property
    def card(self) -> str:
        return f"{self.folder}/model.json"

    @property
    def training(self) -> str:
        """What training a model the workflow trains measured: its classes, accuracies and losses."""
        return f"{self.folder}/training.json"


@dataclass(frozen=True)
class RunFolder:
    """results/<run>/ and logs/<run>/ of a run or an aligned run: what both kinds have."""

    run: str
    results: str = "results"  # the folder the run's folder is in (the Python API saves anywhere)

    @property
    def root(self) -> str:
        return f"{self.results}/{self.run}"

    @property
    def logs(self) -> str:
        return f"logs/{self.run}"

    @property
    def manifest(self) -> str:
        return f"{self.root}/MANIFEST.json"

    @property
    def viewer_page(self) -> str:
        return f"{self.root}/viewer.html"

    @property
    def viewer_assets(self) -> str:
        return f"{self.root}/viewer"


@dataclass(frozen=True)
class RunFiles(RunFolder):
    """results/<run>/ and logs/<run>/: one run's files, by stage."""

    @property
    def numerics(self) -> str:
        """How the run's numbers are computed (portable or native kernels)."""
        return f"{self.root}/numerics.json"

    @property
    def model_card(self) -> str:
        """The model card with the model's accuracy on the run's images."""
        return f"{self.root}/model.json"

    @property
    def provenance(self) -> str:
        return f"{self.logs}/provenance.json"

    def activations(self, layer: str) -> str:
        return f"{self.root}/activations/{layer}.h5"

    def activation_shard(self, shard: str | int, layer: str) -> str:
        return f"{self.root}/activations/shards/{shard}/{layer}.h5"

    def shared_activations(self, layer: str) -> str:
        """The layer's activations at an aligned atlas's shared positions."""
        return f"{self.root}/aligned/activations/{layer}.h5"

    def layout(self, layer: str, ext: str = "h5") -> str:
        """The layer's UMAP coordinates (h5) or their plot (png)."""
        return f"{self.root}/layout/{layer}.{ext}"

    def cells(self, layer: str, grid: str | int) -> str:
        return f"{self.root}/cells/{layer}/grid{grid}.h5"

    def icons(self, layer: str, grid: str | int) -> str:
        return f"{self.root}/icons/{layer}/grid{grid}.h5"

    def icon_chunk(self, layer: str, grid: str | int, chunk: str | int) -> str:
        return f"{self.root}/icons/{layer}/grid{grid}/chunk{chunk}.h5"

    def atlas(self, layer: str, grid: str | int) -> str:
        return f"{self.root}/atlas/{layer}/grid{grid}.png"

    def tiles(self, layer: str, grid: str | int) -> str:
        return f"{self.root}/atlas/{layer}/tiles/grid{grid}"

    def metrics(self, layer: str) -> str:
        return f"{self.root}/atlas/{layer}/metrics.json"

    def class_atlas(self, slug: str, name: str = "") -> str:
        """A class atlas's or comparison's folder, or a file in it (layout.h5, cells.h5, icons.h5,
        atlas.png, tiles...)."""
        folder = f"{self.root}/class_atlas/{slug}"
        return f"{folder}/{name}" if name else folder

    def attack(self, pair: str, name: str = "") -> str:
        """A patch attack's folder (attacks/<a>_vs_<b>), or a file in it (images.json, patches.h5,
        results.h5, table.json, figure.png)."""
        folder = f"{self.root}/attacks/{pair}"
        return f"{folder}/{name}" if name else folder

    def attack_shard(self, pair: str, shard: str | int) -> str:
        return self.attack(pair, f"shards/{shard}.h5")

    def dictionary(self, layer: str, name: str = "") -> str:
        """A layer's dictionary folder, or a file in it: dictionary.h5 (the learned dictionary), its
        feature atlas (layout.h5, layout.png, cells.h5, icons.h5, atlas.png, tiles), the layer's channels as
        cells and icons (neurons.h5, neuron_icons.h5) and metrics.json."""
        folder = f"{self.root}/dictionary/{layer}"
        return f"{folder}/{name}" if name else folder

    def spectrum(self, size: str | int) -> str:
        """The dataset's amplitude spectrum at an icon size (render.param maco)."""
        return f"{self.root}/spectrum/{size}px.h5"


@dataclass(frozen=True)
class AlignedFiles(RunFolder):
    """results/<aligned run>/: the joint layout, the side-by-side atlases, and each member's part
    under members/<member run>/<layer>/."""

    def layout(self, ext: str = "h5") -> str:
        return f"{self.root}/layout.{ext}"

    def atlas(self, grid: str | int) -> str:
        """The two members' atlases side by side."""
        return f"{self.root}/atlas/grid{grid}.png"

    @property
    def metrics(self) -> str:
        return f"{self.root}/metrics.json"

    def member(self, run: str, layer: str) -> str:
        """A member's folder: its cells, icons, atlases and tiles on the joint grid."""
        return f"{self.root}/members/{run}/{layer}"

    def member_cells(self, run: str, layer: str, grid: str | int) -> str:
        return f"{self.member(run, layer)}/cells/grid{grid}.h5"

    def member_icons(self, run: str, layer: str, grid: str | int) -> str:
        return f"{self.member(run, layer)}/icons/grid{grid}.h5"

    def member_atlas(self, run: str, layer: str, grid: str | int) -> str:
        return f"{self.member(run, layer)}/atlas/grid{grid}.png"

    def member_tiles(self, run: str, layer: str, grid: str | int) -> str:
        return f"{self.member(run, layer)}/atlas/tiles/grid{grid}"


@dataclass(frozen=True)
class RunContents:
    """What one run makes, as the config resolves it: its layers and grids, the slugs of its class atlases
    and attacked pairs, the amplitude spectra its render jobs read, whether it writes the viewer and the
    layers it learns a dictionary of."""

    layers: list[str]
    grids: list[int]
    class_atlases: list[str]
    attack_pairs: list[str]
    spectra: list[str]
    viewer: bool
    dictionary_layers: list[str]


def run_targets(files: RunFiles, run: RunContents) -> list[str]:
    """The files a run is made for (the workflow's default target): everything else is made on the way."""
    return [
        *(files.atlas(layer, grid) for layer in run.layers for grid in run.grids),
        *(files.metrics(layer) for layer in run.layers),
        *(files.layout(layer, "png") for layer in run.layers),
        *(files.class_atlas(slug, "atlas.png") for slug in run.class_atlases),
        *(files.attack(slug, "table.json") for slug in run.attack_pairs),
        *(files.dictionary(layer, name) for layer in run.dictionary_layers for name in ("atlas.png", "metrics.json")),
        *([files.viewer_page] if run.viewer else []),
        files.manifest,
        files.provenance,
    ]


def run_kept_outputs(files: RunFiles, run: RunContents) -> list[str]:
    """Every file and folder a run keeps in its results folder (all but temporary files): what its
    manifest lists."""
    per_layer_grid = (files.cells, files.icons, files.atlas, files.tiles)
    per_class = ("layout.h5", "layout.png", "cells.h5", "icons.h5", "atlas.png", "tiles")
    return [
        files.numerics,
        files.model_card,
        *(files.activations(layer) for layer in run.layers),
        *(files.layout(layer, ext) for layer in run.layers for ext in ("h5", "png")),
        *(path(layer, grid) for path in per_layer_grid for layer in run.layers for grid in run.grids),
        *(files.metrics(layer) for layer in run.layers),
        *(files.class_atlas(slug, name) for slug in run.class_atlases for name in per_class),
        *(files.attack(slug, name) for slug in run.attack_pairs for name in ATTACK_FILES),
        *(files.dictionary(layer, name) for layer in run.dictionary_layers for name in DICTIONARY_FILES),
        *run.spectra,
        *([files.viewer_page, files.viewer_assets] if run.viewer else []),
    ]
