"""Render quality per setting: by default the published CIFAR-10 ResNet-32 of config/cifar10-resnet32.yaml
on real CIFAR-10 photographs (its committed checkpoint, offline), or any run's config (--config: the
demo ViT's, say).

The workflow makes the layer's cells at one grid size (over all cells, its atlas with the config's
render settings: the ones under test); then every variant renders the same cells, in this one process,
from the same seeds: mean and lowest icon fidelity, class agreement over all cells and over cells of
purity ≥ 0.5, seconds per icon. Over all cells, the config's own variant reproduces the workflow's icons
exactly (checked); the maco variants use the amplitude spectrum the workflow's amplitude_spectrum rule
computes.

  python -m benchmarks.render_quality --images ../path/to/cifar10-images [--variants config,maco,...]
  python -m benchmarks.render_quality --config config/demo-vit.yaml --layer encoder.layers.encoder_layer_3

Figures are printed as a Markdown table and kept in docs/measurements/render_quality-<model>-<layer>.json
(with --study S, render_quality-<model>-<layer>-S.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from activation_atlas.algorithms.binning import PURE_CELL, agreement
from activation_atlas.formats.cells import read_top_class
from activation_atlas.formats.icons import IconsFile
from activation_atlas.formats.model_card import read_card
from activation_atlas.formats.spectrum import read_spectrum
from activation_atlas.models.kinds import model_kind
from activation_atlas.models.loading import load_described_model
from activation_atlas.optvis.render import RenderSettings, classify_icons, render_attempts
from activation_atlas.runtime import configure_torch
from activation_atlas.stages.render import RenderTarget, prepare_render
from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.paths import ModelFiles, RunFiles
from activation_atlas.workflow.settings import layer_section, model_input_size
from benchmarks import keep

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"

CONFIG = REPO / "config" / "cifar10-resnet32.yaml"
# The local copy of a config's weights, used instead of its URL (by model name).
CHECKPOINTS = {"cifar10-resnet32": REPO / "tests" / "data" / "cifar10-resnet32" / "resnet32-d509ac18.th"}
NO_TRANSFORMS = {"pad": 0, "jitters": [], "scale_base": 1.0, "scale_exponents": [0, 0], "rotation_deg": 0}
LIGHT_TRANSFORMS = {"pad": 4, "jitters": [1, 1], "scale_base": 0.998, "scale_exponents": [0, 10], "rotation_deg": 2}
# name → changes to the layer's render section as configured (a transforms change is written over the
# configured transforms)
VARIANTS = {
    "config": {},
    "whiten": {"whiten": True},
    "cossim_pow 0": {"cossim_pow": 0},
    "cossim_pow 2": {"cossim_pow": 2},
    "steps ÷2": {"steps_factor": 0.5},
    "steps ×2": {"steps_factor": 2},
    "steps ×4": {"steps_factor": 4},
    "steps ×8": {"steps_factor": 8},
    "lr ×2": {"lr_factor": 2},
    "lr ÷2": {"lr_factor": 0.5},
    "icon 128": {"icon_size": 128},
    "icon 160": {"icon_size": 160},
    "icon 224": {"icon_size": 224},
    "icon 224 + steps ×2": {"icon_size": 224, "steps_factor": 2},
    "icon 224 + steps ×4": {"icon_size": 224, "steps_factor": 4},
    "no rotation": {"transforms": {"rotation_deg": 0}},
    "light transforms": {"transforms": LIGHT_TRANSFORMS},
    "light transforms + steps ×4": {"transforms": LIGHT_TRANSFORMS, "steps_factor": 4},
    "paper": {"steps": 1024, "attempts": 4, "icon_size": 80},  # the Distill atlases' budget
    "attempts 2": {"attempts": 2},
    "attempts 4": {"attempts": 4},
    "no transforms": {"transforms": NO_TRANSFORMS},  # a variant changing the transforms is named after them
    "maco lr 0.5": {"param": "maco", "lr": 0.5},
    "maco lr 0.5 whiten": {"param": "maco", "lr": 0.5, "whiten": True},
}


def benchmark_config(config_path: Path, images: Path | None, layer: str, grid: int, run: str) -> dict:
    """The config on `images` (where given), with the local copy of its checkpoint (where there is one),
    one layer and grid, no class atlases or viewer; its per-layer overrides of other layers dropped."""
    config = yaml.safe_load(config_path.read_text())
    config.update(
        run=run,
        layers=[layer],
        grid={**config["grid"], "sizes": [grid]},
        class_atlas={"classes": [], "comparisons": []},
        viewer={"enabled": False},
    )
    for section in ("layout", "render"):
        overrides = config.get(section, {}).get("per_layer", {})
        config.setdefault(section, {})["per_layer"] = {k: v for k, v in overrides.items() if k == layer}
    if images is not None:
        config["dataset"].update(path=str(images), name=f"{config['dataset']['name']}-{images.name}")
    if config["model"]["name"] in CHECKPOINTS:
        config["model"].update(url=None, sha256=None, checkpoint=str(CHECKPOINTS[config["model"]["name"]]))
    return config


def weights_of(config: dict) -> Path | None:
    """The weights file the workflow loaded (as rules/common.smk picks it): the configured checkpoint, or
    the one it trained or fetched; None where the model's builder brings its own."""
    if config["model"].get("checkpoint"):
        return Path(config["model"]["checkpoint"])
    if model_kind(config["model"]["kind"]).trained or config["model"].get("url"):
        return REPO / ModelFiles(config["model"]["name"]).weights
    return None


def sample_cells(count: int, cells: int | None, seed: int) -> np.ndarray:
    """A seeded sample of `cells` of the grid's `count` cells (all of them for None), in file order."""
    if cells is None or cells >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:cells])


def variant_section(section: dict, change: dict) -> dict:
    """The section with the change written over it (its transforms over the section's); steps_factor and
    lr_factor scale what it has."""
    changed = {**section, **{k: v for k, v in change.items() if not k.endswith("_factor")}}
    if "transforms" in change:
        changed["transforms"] = {**section["transforms"], **change["transforms"]}
    if "steps_factor" in change:
        changed["steps"] = int(section["steps"] * change["steps_factor"])
    if "lr_factor" in change:
        changed["lr"] = section["lr"] * change["lr_factor"]
    return changed


@dataclass
class LayerUnderTest:
    """One layer of a run, its cells at one grid and all the renderer needs to draw their icons (the
    render stage's own RenderTarget)."""

    config: dict
    files: RunFiles
    layer: str
    grid_size: int
    target: RenderTarget
    input_size: int
    cell_class: np.ndarray
    chosen_by: str
    pure: np.ndarray
    spectrum_path: Path
    configured: dict  # the layer's render section as configured

    @property
    def model(self) -> torch.nn.Module:
        return self.target.model

    @property
    def module(self) -> dict:
        return self.target.module

    @property
    def grid(self):
        return self.target.grid

    @property
    def cells(self):
        return self.target.cells

    @property
    def whitening(self) -> np.ndarray:
        return self.target.whitening

    def render(self, section: dict, cells=slice(None), trace_every: int | None = None):
        """Icons of the chosen cells under a render section; with trace_every, every attempt (Attempts)
        with its trace."""
        settings = RenderSettings.from_section(section)
        amplitude = read_spectrum(self.spectrum_path) if settings.param == "maco" else None
        attempts = render_attempts(
            self.model,
            self.module,
            self.cells.mean[cells],
            self.target.keys[cells],
            self.config["seed"],
            settings,
            self.whitening if section["whiten"] else None,
            log=lambda _: None,
            amplitude=amplitude,
            grid=self.grid,
            trace_every=trace_every,
        )
        return attempts if trace_every else attempts.best()

    def scores(self, icons, cells=slice(None)) -> dict:
        """Mean icon fidelity and class agreement (all cells, pure cells) of icons of the chosen cells."""
        icon_class = classify_icons(self.model, icons.images, self.input_size, 64)
        return {
            "mean_icon_fidelity": round(float(icons.fidelity.mean()), 4),
            "min_icon_fidelity": round(float(icons.fidelity.min()), 4),
            "class_agreement": agreement(icon_class, self.cell_class[cells], np.ones(len(icon_class), bool)),
            "class_agreement_in_pure_cells": agreement(icon_class, self.cell_class[cells], self.pure[cells]),
        }


def prepare_layer(
    config_path: Path,
    images: Path | None,
    layer: str,
    grid_size: int,
    cores: str,
    run: str = "render-quality",
    workflow_icons: bool = True,
) -> LayerUnderTest:
    """Make the layer's cells at one grid and its amplitude spectrum with the workflow, as run
    `<run>-<the config's run>` (with workflow_icons, its whole atlas: the icons under the config's render
    settings and their metrics), then load what rendering its cells again needs."""
    run = f"{run}-{yaml.safe_load(config_path.read_text())['run']}"
    config = benchmark_config(config_path.resolve(), images.resolve() if images else None, layer, grid_size, run)
    out_dir = REPO / "logs" / "benchmarks"
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / f"{run}.config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    check_config(config, SCHEMA)  # the defaults, as the workflow sees them
    files = RunFiles(run)
    render = layer_section(config, "render", layer)
    made = files.metrics(layer) if workflow_icons else files.cells(layer, grid_size)
    spectrum_path = files.spectrum(render["icon_size"])
    # The layer's cells (or atlas), and the maco variants' amplitude spectrum, by the workflow's own rules.
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", str(config_path), "--cores", cores, made, spectrum_path],
        cwd=REPO,
        check=True,
    )
    cells_path = REPO / files.cells(layer, grid_size)
    cell_class, chosen_by = read_top_class(cells_path, read_card(REPO / files.model_card)["classes"])
    configure_torch(config["threads"], config["seed"], print)  # as the render jobs run: their seconds are these
    input_size = model_input_size(config)
    card = read_card(REPO / ModelFiles(config["model"]["name"]).card)
    target = prepare_render(
        cells_path,
        REPO / files.activations(layer),
        load_described_model(config["model"], weights_of(config), card, "cpu"),
        card,
        layer,
        grid_size,
        whiten=True,
        device="cpu",
        input_size=input_size,
        log=print,
    )
    return LayerUnderTest(
        config=config,
        files=files,
        layer=layer,
        grid_size=grid_size,
        target=target,
        input_size=input_size,
        cell_class=cell_class,
        chosen_by=chosen_by,
        pure=target.cells.purity >= PURE_CELL,
        spectrum_path=REPO / spectrum_path,
        configured=render,
    )


def layer_parser(description: str) -> argparse.ArgumentParser:
    """The options that choose the run, layer and grid under test (prepare_layer), and the cores."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the run's config (default: the ResNet-32's)")
    parser.add_argument("--images", type=Path, help="images in class folders, for an image_folder dataset")
    parser.add_argument("--layer", default="layer3")
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--cores", default="all")
    return parser


def main() -> None:
    parser = layer_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--cells", type=int, default=0, help="a seeded sample of this many cells (0: all)")
    parser.add_argument(
        "--study",
        default="",
        help="kept as render_quality-<model>-<layer>-<study>, beside the "
        "layer's other studies (default: as render_quality-<model>-<layer>)",
    )
    args = parser.parse_args()
    # A sample's figures are this process's own: the workflow renders the whole layer only to be checked
    # against (all cells).
    bench = prepare_layer(args.config, args.images, args.layer, args.grid, args.cores, workflow_icons=not args.cells)
    chosen = sample_cells(len(bench.cells.count), args.cells or None, bench.config["seed"])
    rows = []
    for name in args.variants.split(","):
        section = variant_section(bench.configured, VARIANTS[name])
        start = time.perf_counter()
        icons = bench.render(section, chosen)
        seconds = time.perf_counter() - start
        if name == "config" and not args.cells:  # a sample is batched otherwise
            with IconsFile(REPO / bench.files.icons(args.layer, args.grid)) as made:
                assert np.array_equal(made.icons[:], icons.images), "the workflow's icons differ from this render"
        label = name.split(" + ")[0]
        transforms = (
            "yes"
            if section["transforms"] == bench.configured["transforms"]
            else "none"
            if label == "no transforms"
            else label.removesuffix(" transforms")
        )
        row = {
            "variant": name,
            **bench.scores(icons, chosen),
            "transforms": transforms,
            "seconds_per_icon": round(seconds / len(icons.fidelity), 3),
            "settings": {
                k: section[k] for k in ("param", "steps", "attempts", "lr", "cossim_pow", "whiten", "icon_size")
            },
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    cells, pure = bench.cells, bench.pure
    report = {
        "layer": args.layer,
        "grid": args.grid,
        "cells": int(len(cells.count)),
        "pure_cells": int(pure.sum()),
        "cells_rendered": int(len(chosen)),
        "activations": int(cells.points_total),
        "cell_top_class_by": bench.chosen_by,
        "threads": bench.config["threads"],
        "variants": rows,
    }
    keep("-".join(["render_quality", bench.config["model"]["name"], args.layer, *filter(None, [args.study])]), report)
    print(
        f"\n{args.layer}, grid {args.grid}: {len(cells.count)} cells ({int(pure.sum())} of purity ≥ {PURE_CELL}), "
        f"{cells.points_total} activations; cell classes by {bench.chosen_by}\n"
    )
    print("| variant | mean icon fidelity | class agreement (all cells) | class agreement (pure cells) | s / icon |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['mean_icon_fidelity']} | {row['class_agreement']} | "
            f"{row['class_agreement_in_pure_cells']} | {row['seconds_per_icon']} |"
        )


if __name__ == "__main__":
    main()
