"""Performance figures, each ratio measured side by side in one process (medians of several rounds):

(a) extraction: the extract code (hooks, position sampling, HDF5 writes) vs a bare forward pass of the
    same model at the same batch size, on the same in-memory images (decoding excluded from both);
(b) rendering: icons/s of batched feature inversion vs one icon at a time, for several batch sizes.

Run from the repository root after `make demo`:  python -m benchmarks.run_benchmarks [--inceptionv1]
Figures are printed and kept in docs/measurements/run_benchmarks.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from activation_atlas.algorithms.extract import Batch, ExtractSettings, extract_activations
from activation_atlas.models.capture import forward_to_layers, layer_names, resolve_layers
from activation_atlas.models.demo_cnn import DemoCNN
from activation_atlas.models.loading import load_model
from activation_atlas.optvis.render import RenderSettings, render_icons
from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.paths import ModelFiles
from activation_atlas.workflow.settings import layer_section
from benchmarks import keep

REPO = Path(__file__).resolve().parents[1]


def demo_model(config: dict) -> torch.nn.Module:
    """The default run's trained model when it exists, otherwise the same network untrained."""
    weights = REPO / ModelFiles(config["model"]["name"]).weights
    if weights.exists():
        return load_model(config["model"], weights, 10)
    torch.manual_seed(0)
    model = DemoCNN(tuple(config["model"]["channels"]), 10)
    return model.eval().to(memory_format=torch.channels_last)


def extraction_ratio(model, config: dict, n_images: int, rounds: int) -> dict:
    size, batch_size = config["dataset"]["image_size"], config["extract"]["batch_size"]
    images = torch.rand(n_images, 3, size, size, generator=torch.Generator().manual_seed(0))
    batches = [
        Batch(
            images[i : i + batch_size],
            np.arange(i, min(i + batch_size, n_images)),
            np.zeros(min(batch_size, n_images - i), dtype=np.int64),
        )
        for i in range(0, n_images, batch_size)
    ]
    modules = resolve_layers(model, config["layers"], layer_names(model))

    def bare():
        with torch.inference_mode():
            for batch in batches:
                model(batch.images.contiguous(memory_format=torch.channels_last))

    def extract(out_dir):
        paths = {layer: Path(out_dir) / f"{layer}.h5" for layer in config["layers"]}
        extract_activations(
            model,
            modules,
            iter(batches),
            n_images,
            paths,
            ExtractSettings(seed=0, positions_per_image=1, exclude_edge=config["extract"]["exclude_edge"]),
            provenance={"classes": []},
            log=lambda _: None,
        )

    bare()  # warm-up
    bare_rates, extract_rates = [], []
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(rounds):
            start = time.perf_counter()
            bare()
            bare_rates.append(n_images / (time.perf_counter() - start))
            start = time.perf_counter()
            extract(out_dir)
            extract_rates.append(n_images / (time.perf_counter() - start))
    ratios = [e / b for e, b in zip(extract_rates, bare_rates)]
    return {
        "images": n_images,
        "batch_size": batch_size,
        "layers": config["layers"],
        "bare_images_per_s": statistics.median(bare_rates),
        "extract_images_per_s": statistics.median(extract_rates),
        "ratio_median": statistics.median(ratios),
        "ratio_per_round": ratios,
    }


def rendering_ratio(model, config: dict, layer: str, icons: int, steps: int, batch_sizes, rounds: int) -> dict:
    settings = RenderSettings.from_section(layer_section(config, "render", layer))
    module = resolve_layers(model, [layer], layer_names(model))
    with torch.no_grad():
        probe = torch.rand(1, 3, settings.icon_size, settings.icon_size)
        width = forward_to_layers(model, module, probe)[layer].shape[1]
    targets = np.abs(np.random.default_rng(0).normal(size=(icons, width))).astype(np.float32)
    keys = [(i,) for i in range(icons)]

    def rate(batch_size):
        s = type(settings)(**{**settings.__dict__, "steps": steps, "attempts": 1, "batch_size": batch_size})
        start = time.perf_counter()
        render_icons(model, module, targets, keys, 0, s, log=lambda _: None)
        return icons / (time.perf_counter() - start)

    rate(1)  # warm-up
    results = {}
    for _ in range(rounds):
        single = rate(1)
        for b in batch_sizes:
            results.setdefault(b, []).append(rate(b) / single)
        results.setdefault(1, []).append(single)
    single_rate = statistics.median(results.pop(1))
    ratios = {b: statistics.median(r) for b, r in results.items()}
    best = max(ratios, key=ratios.get)
    return {
        "layer": layer,
        "icon_size": settings.icon_size,
        "icons": icons,
        "steps": steps,
        "one_at_a_time_icons_per_s": single_rate,
        "ratio_by_batch_size": ratios,
        "best_batch_size": best,
        "best_ratio": ratios[best],
    }


def inceptionv1_rendering_ratio(icons: int, steps: int, batch_sizes, rounds: int) -> dict:
    """Batched vs one-at-a-time rendering on the paper's network (random weights: the cost is the
    same), mixed4c at 80 px, the paper's icon size."""
    from activation_atlas.models.inceptionv1 import InceptionV1
    from activation_atlas.optvis.render import RenderSettings
    from activation_atlas.optvis.transforms import TransformSpec

    torch.manual_seed(0)
    model = InceptionV1().eval().to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    module = resolve_layers(model, ["mixed4c"], model.layer_names())
    targets = np.abs(np.random.default_rng(0).normal(size=(icons, 512))).astype(np.float32)
    spec = TransformSpec(pad=16, jitters=(4, 4, 8), scale_base=0.998, scale_exponents=(20, 39), rotation_deg=20)

    def rate(batch_size):
        s = RenderSettings(
            icon_size=80, steps=steps, attempts=1, lr=0.05, cossim_pow=3, batch_size=batch_size, transforms=spec
        )
        start = time.perf_counter()
        render_icons(model, module, targets, [(i,) for i in range(icons)], 0, s, log=lambda _: None)
        return icons / (time.perf_counter() - start)

    rate(4)  # warm-up
    singles, ratios = [], {b: [] for b in batch_sizes}
    for _ in range(rounds):
        single = rate(1)
        singles.append(single)
        for b in batch_sizes:
            ratios[b].append(rate(b) / single)
    medians = {b: statistics.median(r) for b, r in ratios.items()}
    best = max(medians, key=medians.get)
    return {
        "layer": "inceptionv1 mixed4c",
        "icon_size": 80,
        "icons": icons,
        "steps": steps,
        "one_at_a_time_icons_per_s": statistics.median(singles),
        "ratio_by_batch_size": medians,
        "best_batch_size": best,
        "best_ratio": medians[best],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--icons", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument(
        "--inceptionv1",
        action="store_true",
        help="also measure rendering on InceptionV1 mixed4c at 80 px (the paper's setting)",
    )
    parser.add_argument("--inceptionv1-steps", type=int, default=8)
    parser.add_argument("--inceptionv1-icons", type=int, default=128)
    parser.add_argument("--inceptionv1-batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    args = parser.parse_args()

    config = yaml.safe_load(Path(args.config).read_text())
    check_config(config, REPO / "schemas" / "config.schema.yaml")
    torch.set_num_threads(config["threads"])
    model = demo_model(config)
    for p in model.parameters():
        p.requires_grad_(False)

    report = {"torch_threads": torch.get_num_threads()}
    report["extraction"] = extraction_ratio(model, config, args.images, args.rounds)
    e = report["extraction"]
    print(
        f"(a) extraction: {e['extract_images_per_s']:.0f} images/s vs bare forward "
        f"{e['bare_images_per_s']:.0f} images/s → ratio {e['ratio_median']:.3f} (median of {args.rounds})"
    )
    report["rendering"] = [
        rendering_ratio(model, config, layer, args.icons, args.steps, args.batch_sizes, args.rounds)
        for layer in config["layers"]
    ]
    for r in report["rendering"]:
        ratios = ", ".join(f"B={b}: {v:.2f}×" for b, v in r["ratio_by_batch_size"].items())
        print(
            f"(b) rendering {r['layer']} ({r['icon_size']} px): one at a time "
            f"{r['one_at_a_time_icons_per_s']:.2f} icons/s; batched {ratios}"
        )
    if args.inceptionv1:
        r = inceptionv1_rendering_ratio(
            args.inceptionv1_icons, args.inceptionv1_steps, args.inceptionv1_batch_sizes, args.rounds
        )
        report["rendering_inceptionv1"] = r
        ratios = ", ".join(f"B={b}: {v:.2f}×" for b, v in r["ratio_by_batch_size"].items())
        print(
            f"(b) rendering {r['layer']} (80 px): one at a time {r['one_at_a_time_icons_per_s']:.2f} "
            f"icons/s; batched {ratios}"
        )
    keep("run_benchmarks", report)


if __name__ == "__main__":
    main()
