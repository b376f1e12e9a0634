"""Render quality on a real network: the published CIFAR-10 ResNet-32 of config/cifar10-resnet32.yaml on
real CIFAR-10 photographs.

The workflow makes the layer's atlas at one grid size with the config's render settings (the ones
under test); then every variant renders the same cells, in this one process, from the same seeds:
mean icon fidelity, class agreement over all cells and over cells of purity ≥ 0.5, seconds per icon.
The config's own variant reproduces the workflow's icons exactly (checked); the maco variants use the
amplitude spectrum the workflow's amplitude_spectrum rule computes.

  python benchmarks/render_quality.py --images ../path/to/cifar10-images [--variants config,maco,...]

Figures are printed as a Markdown table and written to logs/benchmarks/render_quality.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from activation_atlas.extract import layer_key  # noqa: E402
from activation_atlas.formats.activations import ActivationFile  # noqa: E402
from activation_atlas.formats.cells import read_cells, read_top_class  # noqa: E402
from activation_atlas.formats.icons import IconsFile  # noqa: E402
from activation_atlas.formats.model_card import read_card  # noqa: E402
from activation_atlas.formats.spectrum import read_spectrum  # noqa: E402
from activation_atlas.models import layer_names, load_described_model  # noqa: E402
from activation_atlas.models.capture import resolve_layers  # noqa: E402
from activation_atlas.optvis.objectives import whitening_matrix  # noqa: E402
from activation_atlas.optvis.render import RenderSettings, classify_icons, render_icons  # noqa: E402
from activation_atlas.settings import layer_section  # noqa: E402
from activation_atlas.stages.atlas import PURE_CELL, agreement  # noqa: E402

CONFIG = REPO / "config" / "cifar10-resnet32.yaml"
CHECKPOINT = REPO / "tests" / "data" / "cifar10-resnet32" / "resnet32-d509ac18.th"
NO_TRANSFORMS = {"pad": 0, "jitters": [], "scale_base": 1.0, "scale_exponents": [0, 0], "rotation_deg": 0}
# name → changes to the layer's render section as configured
VARIANTS = {
    "config": {},
    "whiten": {"whiten": True},
    "cossim_pow 0": {"cossim_pow": 0},
    "cossim_pow 2": {"cossim_pow": 2},
    "steps ÷2": "half_steps",
    "steps ×2": "double_steps",
    "attempts 2": {"attempts": 2},
    "attempts 4": {"attempts": 4},
    "no transforms": {"transforms": NO_TRANSFORMS},
    "maco lr 0.5": {"param": "maco", "lr": 0.5},
    "maco lr 0.5 whiten": {"param": "maco", "lr": 0.5, "whiten": True},
}


def benchmark_config(images: Path, layer: str, grid: int, run: str) -> dict:
    """The shipped config on `images`, with the local copy of its checkpoint, one layer and grid, no
    class atlases or viewer."""
    config = yaml.safe_load(CONFIG.read_text())
    config.update(run=run, layers=[layer], grid={**config["grid"], "sizes": [grid]},
                  class_atlas={"classes": [], "comparisons": []}, viewer={"enabled": False})
    config["dataset"].update(path=str(images), name=f"{config['dataset']['name']}-{images.name}")
    config["model"].update(url=None, sha256=None, checkpoint=str(CHECKPOINT))
    return config


def variant_section(section: dict, change) -> dict:
    if change == "half_steps":
        return {**section, "steps": section["steps"] // 2}
    if change == "double_steps":
        return {**section, "steps": section["steps"] * 2}
    return {**section, **change}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="CIFAR-10 images in class folders")
    parser.add_argument("--layer", default="layer3")
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    run = "render-quality"
    config = benchmark_config(args.images.resolve(), args.layer, args.grid, run)
    out_dir = REPO / "logs" / "benchmarks"
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "render_quality_config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    validate(config, str(REPO / "schemas" / "config.schema.yaml"))   # the defaults, as the workflow sees them
    results = REPO / "results" / run
    metrics_path = results / "atlas" / args.layer / "metrics.json"
    # The maco variants' amplitude spectrum, by the workflow's own rule.
    spectrum_path = results / "spectrum" / f"{layer_section(config, 'render', args.layer)['icon_size']}px.h5"
    subprocess.run([sys.executable, "-m", "snakemake", "--configfile", str(config_path), "--cores", args.cores,
                    str(metrics_path.relative_to(REPO)), str(spectrum_path.relative_to(REPO))], cwd=REPO, check=True)
    workflow = json.loads(metrics_path.read_text())["grids"][str(args.grid)]

    card = read_card(results / "model.json")
    cells_path = results / "cells" / args.layer / f"grid{args.grid}.h5"
    cells = read_cells(cells_path)
    cell_class, chosen_by = read_top_class(cells_path, card["classes"])
    pure = cells.purity >= PURE_CELL
    model_dir = REPO / "resources" / "models" / config["model"]["name"]
    model = load_described_model(config["model"], CHECKPOINT, model_dir / "model.json")
    module = resolve_layers(model, [args.layer], layer_names(model))
    with ActivationFile(results / "activations" / f"{args.layer}.h5") as acts:
        whitening = whitening_matrix(acts.activations[:])
    keys = [(layer_key(args.layer), args.grid, int(r), int(c)) for r, c in zip(cells.row, cells.col)]
    configured = layer_section(config, "render", args.layer)
    torch.set_num_threads(config["threads"])

    rows = []
    for name in args.variants.split(","):
        section = variant_section(configured, VARIANTS[name])
        settings = RenderSettings.from_section(section)
        amplitude = read_spectrum(spectrum_path) if settings.param == "maco" else None
        start = time.perf_counter()
        icons = render_icons(model, module, cells.mean, keys, config["seed"], settings,
                             whitening if section["whiten"] else None, log=lambda _: None, amplitude=amplitude)
        seconds = time.perf_counter() - start
        icon_class = classify_icons(model, icons.images, config["model"]["input_size"], settings.batch_size)
        if name == "config":
            with IconsFile(results / "icons" / args.layer / f"grid{args.grid}.h5") as made:
                assert np.array_equal(made.icons[:], icons.images), "the workflow's icons differ from this render"
        row = {"variant": name, "mean_icon_fidelity": round(float(icons.fidelity.mean()), 4),
               "class_agreement": agreement(icon_class, cell_class, np.ones(len(icon_class), bool)),
               "class_agreement_in_pure_cells": agreement(icon_class, cell_class, pure),
               "seconds_per_icon": round(seconds / len(icons.fidelity), 3),
               "settings": {k: section[k] for k in ("param", "steps", "attempts", "lr", "cossim_pow", "whiten")}}
        rows.append(row)
        print(json.dumps(row), flush=True)

    report = {"layer": args.layer, "grid": args.grid, "cells": int(len(cells.count)), "pure_cells": int(pure.sum()),
              "activations": int(cells.points_total), "cell_top_class_by": chosen_by,
              "workflow_metrics": workflow, "threads": config["threads"], "variants": rows}
    (out_dir / "render_quality.json").write_text(json.dumps(report, indent=2))
    print(f"\n{args.layer}, grid {args.grid}: {len(cells.count)} cells ({int(pure.sum())} of purity ≥ {PURE_CELL}), "
          f"{cells.points_total} activations; cell classes by {chosen_by}\n")
    print("| variant | mean icon fidelity | class agreement (all cells) | class agreement (pure cells) | s / icon |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['mean_icon_fidelity']} | {row['class_agreement']} | "
              f"{row['class_agreement_in_pure_cells']} | {row['seconds_per_icon']} |")


if __name__ == "__main__":
    main()
