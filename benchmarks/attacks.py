"""The patch attacks of a run (docs/attacks.md), made by the workflow and kept as a measurement: the
config's attack tables made in the repository (with what they need; earlier outputs reused), with
attacks.images set to another folder of images where given, then each attacked pair's figures per kind of patch.

  python -m benchmarks.attacks --config config/cifar10-resnet32.yaml \
      --checkpoint tests/data/cifar10-resnet32/resnet32-d509ac18.th [--images FOLDER] \
      [--crops-from-other-classes] [--label held-out]

Keeps docs/measurements/attacks-<run>[-<label>].json; tools/docs_tables.py makes its table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from activation_atlas.algorithms.class_atlas import comparison_slug
from activation_atlas.workflow.paths import RunFiles
from benchmarks import REPO, keep


def attack_config(config: Path, images: str | None, checkpoint: str | None, other_class_crops: bool) -> dict:
    """The config with attacks on, the images folder, crops from other classes and a local checkpoint
    (instead of the URL) set."""
    values = yaml.safe_load(config.read_text())
    values.setdefault("attacks", {})["enabled"] = True
    values["attacks"]["crops_from_other_classes"] = other_class_crops
    if images:
        values["attacks"]["images"] = images
    if checkpoint:
        values["model"].update(url="", checkpoint=checkpoint)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--images", help="attacks.images: a folder of class folders to take the attacked images from")
    parser.add_argument("--crops-from-other-classes", action="store_true", help="attacks.crops_from_other_classes")
    parser.add_argument("--checkpoint", help="the model's weights from this file instead of model.url")
    parser.add_argument("--label", help="names the measurement: attacks-<run>-<label>")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    values = attack_config(args.config, args.images, args.checkpoint, args.crops_from_other_classes)
    derived = REPO / "logs" / "benchmarks" / "attacks.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(values))
    run = RunFiles(values["run"])
    pairs = values["attacks"].get("pairs") or values["class_atlas"]["comparisons"]
    tables = [run.attack(comparison_slug(pair), "table.json") for pair in pairs]
    # Only what the attacks need: the comparisons' atlases, not every layer's.
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", str(derived), "--cores", args.cores, *tables],
        cwd=REPO,
        check=True,
    )
    figures = {}
    for pair in pairs:
        table = json.loads((REPO / run.attack(comparison_slug(pair), "table.json")).read_text())
        figures[comparison_slug(pair)] = {key: table[key] for key in ("pair", "layer", "images", "placement", "kinds")}
    keep(f"attacks-{values['run']}" + (f"-{args.label}" if args.label else ""), figures)


if __name__ == "__main__":
    main()
