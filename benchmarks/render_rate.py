"""What a render step costs, per layer, with the network as loaded and with its batch norms folded into
their convolutions (as the render stage runs it, models/folding.py): by default EfficientNet-Lite0 at
224 px (config/efficientnet-lite0-imagenet.yaml), or any config whose model needs no weights the
workflow makes (--config).

Each layer's icons are rendered with the config's render settings for that layer (icon size,
parameterisation, transforms, one batch of render.batch_size icons) for a few steps, towards seeded
random directions; the two cases alternate, round after round, so drift on the machine falls on both.
Also measured: the share of a step spent in batch norm kernels (forward and backward, torch.profiler)
when they are not folded.

  python -m benchmarks.render_rate [--config CONFIG] [--steps 8] [--rounds 5]

Milliseconds per icon-step are medians over the rounds. Prints the docs' table (tools/docs_tables.py)
and keeps its figures in docs/measurements/render_rate-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from activation_atlas.models.capture import forward_to_layers, layer_names, resolve_layers
from activation_atlas.models.folding import fold_batch_norms
from activation_atlas.models.loading import load_model
from activation_atlas.optvis.render import RenderSettings, render_attempts
from activation_atlas.runtime import configure_torch
from activation_atlas.workflow.settings import layer_section, model_input_size
from benchmarks import keep
from benchmarks.extraction_rate import CONFIG, loaded_config
from benchmarks.render_quality import weights_of
from tools.docs_tables import render_rate


def channels_of(model, module: dict, size: int) -> int:
    with torch.no_grad():
        (output,) = forward_to_layers(model, module, torch.zeros(1, 3, size, size)).values()
    return output.shape[1]


def render_seconds(model, module: dict, targets: np.ndarray, settings: RenderSettings) -> float:
    start = time.perf_counter()
    render_attempts(model, module, targets, [(k,) for k in range(len(targets))], 0, settings, log=lambda _: None)
    return time.perf_counter() - start


def batch_norm_share(model, module: dict, targets: np.ndarray, settings: RenderSettings) -> float:
    """The fraction of the profiled CPU time of a short render spent in batch norm kernels."""
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        render_attempts(
            model,
            module,
            targets,
            [(k,) for k in range(len(targets))],
            0,
            replace(settings, steps=2),
            log=lambda _: None,
        )
    events = profiled.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    return sum(event.self_cpu_time_total for event in events if "batch_norm" in event.key) / total


def measure_layer(config: dict, layer: str, models: dict, steps: int, rounds: int) -> dict:
    section = layer_section(config, "render", layer)
    settings = replace(RenderSettings.from_section(section), steps=steps, attempts=1, stop=None)
    modules = {case: resolve_layers(model, [layer], layer_names(model)) for case, model in models.items()}
    generator = np.random.default_rng(config["seed"])
    channels = channels_of(models["as loaded"], modules["as loaded"], settings.icon_size)
    targets = generator.random((settings.batch_size, channels)).astype(np.float32)
    for case, model in models.items():  # the kernels' first use, untimed
        render_seconds(model, modules[case], targets, replace(settings, steps=1))
    seconds = {case: [] for case in models}
    for _ in range(rounds):
        for case, model in models.items():
            seconds[case].append(render_seconds(model, modules[case], targets, settings))
    icon_steps = settings.batch_size * steps
    return {
        "layer": layer,
        "icon_size": settings.icon_size,
        "batch_size": settings.batch_size,
        "param": settings.param,
        "steps_configured": section["steps"],
        "steps_timed": steps,
        "ms_per_icon_step": {case: round(1000 * statistics.median(s) / icon_steps, 2) for case, s in seconds.items()},
        "batch_norm_share": round(batch_norm_share(models["as loaded"], modules["as loaded"], targets, settings), 3),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_rate", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--steps", type=int, default=8, help="steps per timed render")
    parser.add_argument("--rounds", type=int, default=5, help="timed renders per case and layer")
    args = parser.parse_args(argv)
    config = loaded_config(args.config)
    configure_torch(config["threads"], config["seed"], lambda _: None)
    model = load_model(config["model"], weights_of(config), num_classes=None)
    size = model_input_size(config)
    probe = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(config["seed"]))
    folded = {layer: fold_batch_norms(model, [layer], probe, print) for layer in config["layers"]}
    layers = [
        measure_layer(config, layer, {"as loaded": model, "batch norms folded": folded[layer]}, args.steps, args.rounds)
        for layer in config["layers"]
    ]
    kept = keep(
        f"render_rate-{config['model']['name']}",
        {"model": config["model"]["name"], "threads": config["threads"], "rounds": args.rounds, "layers": layers},
    )
    print(render_rate(json.loads(kept.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
