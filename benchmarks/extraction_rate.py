"""What extraction costs against the network's bare forward pass, per batch size: by default
EfficientNet-Lite0 at 224 px (config/efficientnet-lite0-imagenet.yaml), or any config whose model needs
no weights the workflow makes (--config).

Each case runs in a process of its own, so that its peak memory is its own: the bare forward pass
(inference mode) on a contiguous model and input and on the channels-last ones the workflow uses; the
forward pass with the graph kept, as attribution needs it; and the workflow's own extraction
(extract_activations: capture, positions, HDF5 writes) without attribution and with attribution to
each image's 5 highest logits. Images are seeded uniform noise at the model's input size (the
convolutions cost the same whatever the pixels); photographs' decoding is not counted.

  python -m benchmarks.extraction_rate [--config CONFIG] [--batch-sizes 16,32,64] [--batches 4]

Images per second are the median over the timed batches after a first one, whose seconds are shown
apart (the kernels' first use). Prints the docs' table (tools/docs_tables.py) and keeps its figures in
docs/measurements/extraction_rate-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from activation_atlas.algorithms.extract import Batch, ExtractSettings, extract_activations
from activation_atlas.models.capture import layer_names, resolve_layers
from activation_atlas.models.loading import load_model
from activation_atlas.runtime import configure_torch
from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.settings import model_input_size
from benchmarks import keep
from benchmarks.render_quality import REPO, SCHEMA, weights_of
from tools.docs_tables import extraction_rate

CONFIG = REPO / "config" / "efficientnet-lite0-imagenet.yaml"
CASES = {
    "forward, contiguous": "the bare forward pass, inference mode, contiguous model and input",
    "forward, channels-last": "the bare forward pass, inference mode, as the workflow lays out model and input",
    "forward, graph kept": "the forward pass with gradients from the input, as attribution needs",
    "extraction": "extract_activations without attribution",
    "extraction + attribution": "extract_activations with attribution to each image's 5 highest logits",
}
TOP_K = 5


def loaded_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    config["dataset"]["path"] = str(REPO)  # any folder: no image is read
    check_config(config, SCHEMA, check_files=False)
    return config


def timed_batches(run_batch, images: list[torch.Tensor]) -> list[float]:
    """Seconds each batch took, in order."""
    seconds = []
    for x in images:
        start = time.perf_counter()
        run_batch(x)
        seconds.append(time.perf_counter() - start)
    return seconds


def forward_seconds(model, images, contiguous: bool, graph: bool) -> list[float]:
    if contiguous:
        model = model.to(memory_format=torch.contiguous_format)

    def run_batch(x):
        x = x.contiguous() if contiguous else x.contiguous(memory_format=torch.channels_last)
        model(x.requires_grad_(True) if graph else x)

    with torch.enable_grad() if graph else torch.inference_mode():
        return timed_batches(run_batch, images)


def extraction_seconds(model, config: dict, images, attribution: bool) -> list[float]:
    """Seconds per batch of extract_activations, from the times its batches are asked for."""
    layers = config["layers"]
    modules = resolve_layers(model, layers, layer_names(model))
    stamps = []

    def batches():
        for index, x in enumerate(images):
            stamps.append(time.perf_counter())
            indices = np.arange(index * len(x), (index + 1) * len(x))
            yield Batch(x, indices, np.full(len(x), -1))
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        paths = {layer: Path(folder) / f"{k}.h5" for k, layer in enumerate(layers)}
        extract_activations(
            model,
            modules,
            batches(),
            sum(len(x) for x in images),
            paths,
            ExtractSettings(
                seed=config["seed"],
                positions_per_image=config["extract"]["positions_per_image"],
                exclude_edge=config["extract"]["exclude_edge"],
                attribution=attribution,
                attribution_top_k=TOP_K if attribution else None,
            ),
            provenance={"seed": config["seed"], "model": config["model"]["name"], "classes": [], "config": {}},
            log=lambda _: None,
        )
    return list(np.diff(stamps))


def run_case(config_path: Path, case: str, batch_size: int, batches: int) -> dict:
    """One case in this process: seconds per batch and this process's peak resident memory."""
    config = loaded_config(config_path)
    configure_torch(config["threads"], config["seed"], lambda _: None)
    model = load_model(config["model"], weights_of(config), num_classes=None)
    size = model_input_size(config)
    generator = torch.Generator().manual_seed(config["seed"])
    images = [torch.rand(batch_size, 3, size, size, generator=generator) for _ in range(batches + 1)]
    if case.startswith("forward"):
        seconds = forward_seconds(model, images, contiguous=case.endswith("contiguous"), graph=case.endswith("kept"))
    else:
        seconds = extraction_seconds(model, config, images, attribution=case.endswith("attribution"))
    return {
        "first_batch_seconds": round(seconds[0], 3),
        "images_per_second": round(batch_size / statistics.median(seconds[1:]), 2),
        "peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def measured_case(config_path: Path, case: str, batch_size: int, batches: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.extraction_rate",
        "--config",
        str(config_path),
        "--case",
        case,
        "--batch-sizes",
        str(batch_size),
        "--batches",
        str(batches),
    ]
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.extraction_rate", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--batches", type=int, default=4, help="timed batches after the first")
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)  # one case, in this process
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    if args.case:
        print(json.dumps(run_case(args.config, args.case, sizes[0], args.batches)))
        return 0
    config = loaded_config(args.config)
    rows = []
    for batch_size in sizes:
        for case in CASES:
            rows.append(
                {"case": case, "batch_size": batch_size, **measured_case(args.config, case, batch_size, args.batches)}
            )
            print(json.dumps(rows[-1]), flush=True)
    kept = keep(
        f"extraction_rate-{config['model']['name']}",
        {
            "model": config["model"]["name"],
            "layers": config["layers"],
            "input_size": model_input_size(config),
            "threads": config["threads"],
            "attribution_top_k": TOP_K,
            "batches_timed": args.batches,
            "cases": CASES,
            "rows": rows,
        },
    )
    print(extraction_rate(json.loads(kept.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
