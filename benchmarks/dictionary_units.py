"""A layer's units compared (docs/dictionary.md): its neurons, its atlas's cells and its sparse dictionary's
atoms, each by the class purity of its top-activating activations and its icon's fidelity, as the
workflow's feature_metrics measures them; made in the repository by the workflow (earlier outputs
reused), with the dictionary section and the images given, and kept as a measurement.

  python -m benchmarks.dictionary_units --config config/cifar10-resnet32.yaml \
      --checkpoint tests/data/cifar10-resnet32/resnet32-d509ac18.th [--images FOLDER --label LABEL] \
      [--dictionary '{layers: [layer3], epochs: 20}']

Keeps docs/measurements/dictionary_units-<run>[-<label>].json; tools/docs_tables.py makes its table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from activation_atlas.workflow.paths import RunFiles
from benchmarks import REPO, keep


def units_config(config: Path, dictionary: dict, images: str | None, label: str | None, checkpoint: str | None):
    """The config with the dictionary section updated, a local checkpoint instead of the URL, and another
    folder of images (as a run and dataset of their own, named after the label) where given."""
    values = yaml.safe_load(config.read_text())
    values.setdefault("dictionary", {}).update(dictionary)
    if not values["dictionary"].get("layers"):
        raise SystemExit(f"{config}: dictionary.layers is empty; name the layers with --dictionary '{{layers: [...]}}'")
    if checkpoint:
        values["model"].update(url="", checkpoint=checkpoint)
    if label:
        values["run"] = f"{values['run']}-{label}"
    if images:
        if not label:
            raise SystemExit("--images needs --label: the run on other images is a run of its own")
        values["dataset"].update(path=images, name=f"{values['dataset']['name']}-{label}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--dictionary", type=yaml.safe_load, default={}, help="YAML mapping merged into dictionary")
    parser.add_argument("--images", help="dataset.path: another folder of images (class folders)")
    parser.add_argument("--checkpoint", help="the model's weights from this file instead of model.url")
    parser.add_argument("--label", help="names the run and the measurement: <run>-<label>")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    values = units_config(args.config, args.dictionary, args.images, args.label, args.checkpoint)
    derived = REPO / "logs" / "benchmarks" / "dictionary_units.yaml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(values))
    run = RunFiles(values["run"])
    layers = values["dictionary"]["layers"]
    targets = [run.dictionary(layer, "metrics.json") for layer in layers]
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", str(derived), "--cores", args.cores, *targets],
        cwd=REPO,
        check=True,
    )
    figures = {
        "run": values["run"],
        "model": values["model"]["name"],
        "images": values["dataset"].get("path") or values["dataset"]["name"],
        "dictionary": values["dictionary"],
        "layers": {layer: json.loads((REPO / target).read_text()) for layer, target in zip(layers, targets)},
    }
    keep(f"dictionary_units-{values['run']}", figures)


if __name__ == "__main__":
    main()
