"""Wall time and peak memory (RSS) of the stages at scale: extraction of generated images, layout and
binning of N activations, and the speed-up of extraction in K = 2 shards on 2 cores.

Each measurement runs in its own process, so its peak RSS is its own. Layout and binning run on
synthetic activations (N × 512 float32, clustered and non-negative like a ReLU layer's) written in the
activation file layout; extraction runs the demo CNN (random weights: the cost is the same) on images
drawn by the dataset generator in memory.

    python -m benchmarks.scale_benchmark                       # N = 10k, 100k, 1M
    python -m benchmarks.scale_benchmark --sizes 10000 100000  # a quicker run

Figures are printed and kept in docs/measurements/scale_benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import keep

REPO = Path(__file__).resolve().parents[1]
CHANNELS = 512


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_activations(path: Path, n: int, seed: int = 0, block: int = 1 << 16) -> None:
    """n × CHANNELS activations around 50 centres, written block by block (never all in memory)."""
    from activation_atlas.h5io import create_h5, write_dataset

    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(50, CHANNELS)).astype(np.float32)
    with create_h5(path, "activations", layer="synthetic", classes=[f"c{k}" for k in range(50)]) as f:
        acts = write_dataset(
            f,
            "activations",
            None,
            "activation",
            "row, channel",
            shape=(n, CHANNELS),
            dtype="float32",
            chunks=(min(n, 1024), CHANNELS),
        )
        labels = write_dataset(f, "label", None, "class index", "row", shape=(n,), dtype="int64")
        write_dataset(f, "image_index", np.arange(n), "index", "row")
        for start in range(0, n, block):
            k = min(block, n - start)
            label = rng.integers(0, 50, size=k)
            acts[start : start + k] = np.maximum(centres[label] + rng.normal(0.0, 0.6, size=(k, CHANNELS)), 0.0)
            labels[start : start + k] = label


def config(pca_dims: int | None, low_memory: bool, grids) -> dict:
    """A run's config for the synthetic layer (a user model's, never built), checked by the workflow's check."""
    from activation_atlas.workflow.config_check import check_config

    cfg = {
        "run": "scale",
        "layers": ["synthetic"],
        "grid": {"sizes": list(grids), "min_count": 5},
        "model": {"kind": "user", "name": "synthetic", "factory": "synthetic:network"},
        "layout": {
            "n_neighbors": 15,
            "min_dist": 0.05,
            "metric": "cosine",
            "pca_dims": pca_dims,
            "low_memory": low_memory,
        },
    }
    check_config(cfg, REPO / "schemas" / "config.schema.yaml")
    return cfg


def child_layout(args) -> dict:
    from activation_atlas.runtime import ProgressLog
    from activation_atlas.stages.layout import Layout, layout
    from activation_atlas.workflow.settings import umap_settings

    cfg = config(args.pca_dims, args.low_memory, [8])
    settings = Layout(
        seed=cfg["seed"],
        layer="synthetic",
        umap=umap_settings(cfg, "synthetic"),
        scatter_size=cfg["layout"]["scatter_size"],
    )
    start = time.perf_counter()
    layout(args.acts, args.layout, args.layout.with_suffix(".png"), settings, ProgressLog(None))
    return {"seconds": time.perf_counter() - start}


def child_bin(args) -> dict:
    from activation_atlas.formats.model_card import write_card
    from activation_atlas.runtime import ProgressLog
    from activation_atlas.stages.cells import Binning, bin_cells

    cfg = config(None, False, [args.grid])
    card = args.layout.parent / "model.json"
    write_card(
        card,
        {
            "model": "synthetic",
            "kind": "user",
            "classes": [f"c{k}" for k in range(50)],
            "layers": ["synthetic"],
            "held_out_accuracy": None,
        },
    )
    start = time.perf_counter()
    bin_cells(
        args.acts,
        args.layout,
        card,
        args.layout.parent / f"cells{args.grid}.h5",
        Binning(seed=cfg["seed"], layer="synthetic", grid_size=args.grid, grid=cfg["grid"]),
        ProgressLog(None),
    )
    return {"seconds": time.perf_counter() - start}


def child_extract(args) -> dict:
    """The extraction stage's loop on the demo CNN, images generated in memory batch by batch; shard
    `args.shard` of `args.shards`."""
    import torch

    from activation_atlas.algorithms.extract import ExtractSettings, ImageBatches, extract_activations
    from activation_atlas.data.generated import class_specs, image_rng, render_image
    from activation_atlas.data.image_folder import BatchRead, to_tensor
    from activation_atlas.models.capture import resolve_layers
    from activation_atlas.models.demo_cnn import DemoCNN
    from activation_atlas.workflow.jobs import shard_images

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DemoCNN((32, 64, 128, 128), 10).eval().to(memory_format=torch.channels_last)
    specs = class_specs()
    labels = np.arange(args.n) % len(specs)

    def read(indices):
        pixels = np.stack([render_image(specs[labels[i]], image_rng(0, "train", int(i)), 64)[0] for i in indices])
        return BatchRead(to_tensor(pixels), indices, [], [])

    images = shard_images(args.n, 128, args.shard, args.shards)
    layers = ["conv2", "conv3", "conv4"]
    out = {layer: args.layout.parent / f"extract{args.shard}_{layer}.h5" for layer in layers}
    start = time.perf_counter()
    extract_activations(
        model,
        resolve_layers(model, layers, list(model.stage_names)),
        ImageBatches(read, labels, 128, 64, images),
        len(images),
        out,
        ExtractSettings(seed=0, positions_per_image=1, exclude_edge=1),
        provenance={"classes": []},
        log=lambda _: None,
    )
    return {"seconds": time.perf_counter() - start}


def run_child(*argv, module: str | None = None) -> dict:
    """The figures a child process of `module` (this one by default) prints last, as JSON."""
    result = subprocess.run(
        [sys.executable, "-m", module or __spec__.name, "--child", *map(str, argv)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_children_in_parallel(argvs) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--child", *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(err[-3000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    return time.perf_counter() - start, results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--grids", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--extract-sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument(
        "--pca-from",
        type=int,
        default=1_000_000,
        help="from this N on, lay out with PCA to 50 dimensions and umap-learn's low-memory mode",
    )
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child_main(args.child)

    report = {"layout_and_binning": [], "extraction": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.extract_sizes:
            one = run_child("extract", n, tmp / "layout.h5", 0, 1, 2)
            two_seconds, two = run_children_in_parallel([("extract", n, tmp / "layout.h5", k, 2, 1) for k in (0, 1)])
            row = {
                "n": n,
                "seconds_one_job": one["seconds"],
                "peak_rss_mb": one["peak_rss_mb"],
                "images_per_s": n / one["seconds"],
                "seconds_two_shards": two_seconds,
                "shard_speedup": one["seconds"] / two_seconds,
            }
            report["extraction"].append(row)
            print(
                f"extraction N={n}: {row['seconds_one_job']:.0f} s ({row['images_per_s']:.0f} images/s), peak RSS "
                f"{row['peak_rss_mb']:.0f} MB; 2 shards × 1 thread in parallel: {two_seconds:.0f} s "
                f"({row['shard_speedup']:.2f}×)",
                flush=True,
            )
        for n in args.sizes:
            acts = tmp / f"acts{n}.h5"
            synthetic_activations(acts, n)
            big = n >= args.pca_from
            layout = run_child("layout", n, tmp / "layout.h5", acts, 50 if big else 0, int(big))
            row = {
                "n": n,
                "pca_dims": 50 if big else None,
                "low_memory": big,
                "layout_seconds": layout["seconds"],
                "layout_peak_rss_mb": layout["peak_rss_mb"],
                "bin": {},
            }
            for grid in args.grids:
                binned = run_child("bin", n, tmp / "layout.h5", acts, grid)
                row["bin"][grid] = {"seconds": binned["seconds"], "peak_rss_mb": binned["peak_rss_mb"]}
            report["layout_and_binning"].append(row)
            bins = ", ".join(f"G={g}: {b['seconds']:.1f} s / {b['peak_rss_mb']:.0f} MB" for g, b in row["bin"].items())
            print(
                f"N={n}: layout {layout['seconds']:.0f} s, peak RSS {layout['peak_rss_mb']:.0f} MB"
                f"{' (PCA 50, low_memory)' if big else ''}; binning {bins}",
                flush=True,
            )
            acts.unlink()
    keep("scale_benchmark", report)


def child_main(argv):
    stage, n, layout = argv[0], int(argv[1]), Path(argv[2])
    args = argparse.Namespace(n=n, layout=layout)
    if stage == "extract":
        args.shard, args.shards, args.threads = int(argv[3]), int(argv[4]), int(argv[5])
        result = child_extract(args)
    elif stage == "layout":
        args.acts, args.pca_dims, args.low_memory = Path(argv[3]), int(argv[4]) or None, bool(int(argv[5]))
        result = child_layout(args)
    else:
        args.acts, args.grid = Path(argv[3]), int(argv[4])
        result = child_bin(args)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
