"""A prepared check of the GPU path, short enough for a few minutes on a lent GPU: the throughputs the
paper config's time depends on, and that time computed from them.

- extraction: InceptionV1 (random weights: the cost is the same) to the paper config's nine layers at
  224 px, through the workflow's own extract_activations, from JPEG bytes decoded and resized on the
  device where torchvision can (decode_jpeg on CUDA); float32 and bfloat16 autocast;
- rendering: icon-steps/s of the paper's render settings (80 px, mixed4c, fourier, its transforms)
  at several batch sizes, with peak device memory;
- layout: UMAP of N × 50 points with cuML where it is installed, and with umap-learn (seeded, the
  workflow's default backend);
- a sparse dictionary: learning one (2,048 atoms, one epoch, then the pass that encodes every activation)
  on N × 512 activations streamed from an HDF5 file, as the dictionary stage does, with peak device memory;
- the paper config's expected time: 1M images, nine layouts, and `--icons` icons at 1,024 steps × 4
  attempts (× `--step-fraction` where a stopping rule is used).

  python -m benchmarks.gpu_check                          # on the GPU: ≈ 5 minutes
  python -m benchmarks.gpu_check --device cpu --quick     # the same code on the CPU in a minute (CI)

Prints one JSON line per figure, then a summary; writes logs/benchmarks/gpu_check.json (--out).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.nn import functional as F

from activation_atlas.algorithms.extract import Batch, ExtractSettings, extract_activations
from activation_atlas.models.capture import layer_names, resolve_layers
from activation_atlas.models.inceptionv1 import InceptionV1
from activation_atlas.optvis.render import RenderSettings, render_icons
from activation_atlas.workflow.config_check import check_config

REPO = Path(__file__).resolve().parents[1]

PAPER_CONFIG = REPO / "config" / "inceptionv1-imagenet.yaml"
# full: batch sizes, sizes and step counts of each measurement; quick: the same code in seconds.
MODES = {
    "full": {
        "extract_batch": 256,
        "extract_batches": 6,
        "render_batches": (64, 256, 1024),
        "render_steps": 12,
        "umap_points": 1_000_000,
        "umap_learn_points": 100_000,
        "dictionary_rows": 1_000_000,
    },
    "quick": {
        "extract_batch": 4,
        "extract_batches": 2,
        "render_batches": (2, 4),
        "render_steps": 3,
        "umap_points": 2_000,
        "umap_learn_points": 2_000,
        "dictionary_rows": 4_000,
    },
}


def emit(figures: dict, name: str, value) -> None:
    figures[name] = value
    print(json.dumps({name: value}), flush=True)


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    """Peak device memory since the last reset (CUDA), else the process's peak RSS."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def jpeg_images(count: int, size: int, seed: int) -> list[torch.Tensor]:
    """`count` distinct JPEGs (encoded bytes) of smooth random colour fields, size × size px."""
    from torchvision.io import encode_jpeg

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 8, 8, generator=generator)
    fields = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return [encode_jpeg((field * 255).to(torch.uint8), quality=90) for field in fields]


def decoded_batch(jpegs: list[torch.Tensor], device: str, size: int) -> torch.Tensor:
    """JPEG bytes → (B, 3, size, size) float in [0, 1] on the device: decoded there where torchvision can."""
    from torchvision.io import decode_jpeg

    images = decode_jpeg(jpegs, device=device) if device.startswith("cuda") else decode_jpeg(jpegs)
    batch = torch.stack(images).to(device).float() / 255.0
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def measure_extraction(figures, device: str, mode: dict, layers: list[str], autocast: str | None) -> None:
    """images/s of the workflow's extraction (decode, resize, forward, gather, write) of 224 px images."""
    model = InceptionV1().to(device).eval()
    modules = resolve_layers(model, layers, layer_names(model))
    batch_size, batches = mode["extract_batch"], mode["extract_batches"]
    jpegs = jpeg_images(batch_size, 256, seed=0)

    def stream():
        for b in range(batches):
            images = decoded_batch(jpegs, device, 224)
            yield Batch(images, np.arange(b * batch_size, (b + 1) * batch_size), np.zeros(batch_size, np.int64))

    with tempfile.TemporaryDirectory() as tmp:
        out = {layer: Path(tmp) / f"{layer}.h5" for layer in layers}
        extract_activations(
            model,
            modules,
            stream(),
            batch_size * batches,
            out,
            ExtractSettings(seed=0, positions_per_image=1, exclude_edge=1, attribution=False, autocast=autocast),
            provenance={},
            log=lambda _: None,
            device=device,
        )  # the first pass pays the kernels' set-up
        reset_peak(device)
        synchronise(device)
        result = extract_activations(
            model,
            modules,
            stream(),
            batch_size * batches,
            out,
            ExtractSettings(seed=0, positions_per_image=1, exclude_edge=1, attribution=False, autocast=autocast),
            provenance={},
            log=lambda _: None,
            device=device,
        )
    name = f"extract_{autocast or 'float32'}"
    emit(figures, f"{name}_images_per_s", round(result["images_per_second"], 1))
    emit(figures, f"{name}_peak_memory_mb", round(peak_memory_mb(device)))


def measure_decoding(figures, device: str, mode: dict) -> None:
    """images/s of JPEG decoding and resizing to 224 px alone (on the device where torchvision can)."""
    batch_size, batches = mode["extract_batch"], mode["extract_batches"]
    jpegs = jpeg_images(batch_size, 256, seed=1)
    decoded_batch(jpegs, device, 224)
    synchronise(device)
    start = time.perf_counter()
    for _ in range(batches):
        decoded_batch(jpegs, device, 224)
    synchronise(device)
    emit(figures, "decode_resize_images_per_s", round(batch_size * batches / (time.perf_counter() - start), 1))


def measure_rendering(figures, device: str, mode: dict, render: dict) -> None:
    """icon-steps/s of the paper's render settings at each batch size (after one warm-up batch)."""
    model = InceptionV1().to(device).eval()
    module = resolve_layers(model, ["mixed4c"], layer_names(model))
    steps = mode["render_steps"]
    for batch in mode["render_batches"]:
        section = {**render, "steps": steps, "attempts": 1, "batch_size": batch, "stop": None}
        settings = RenderSettings.from_section(section)
        targets = np.random.default_rng(batch).random((batch, 512), dtype=np.float32)
        keys = [(i,) for i in range(batch)]
        render_icons(model, module, targets[:1], keys[:1], 0, settings, device=device, log=lambda _: None)
        reset_peak(device)
        synchronise(device)
        start = time.perf_counter()
        render_icons(model, module, targets, keys, 0, settings, device=device, log=lambda _: None)
        synchronise(device)
        seconds = time.perf_counter() - start
        emit(figures, f"render_B{batch}_icon_steps_per_s", round(batch * steps / seconds, 1))
        emit(figures, f"render_B{batch}_peak_memory_mb", round(peak_memory_mb(device)))


def measure_dictionary(figures, device: str, mode: dict) -> None:
    from activation_atlas.stages.dictionary import DictionaryLearning, learn_dictionary
    from benchmarks.dictionary_scale import SECTION
    from benchmarks.scale_benchmark import synthetic_activations

    n = mode["dictionary_rows"]
    with tempfile.TemporaryDirectory() as tmp:
        acts = Path(tmp) / "acts.h5"
        synthetic_activations(acts, n)
        settings = DictionaryLearning(seed=0, device=device, layer="synthetic", dictionary=dict(SECTION, epochs=1))
        reset_peak(device)
        start = time.perf_counter()
        learn_dictionary(acts, Path(tmp) / "dictionary.h5", settings, torch.get_num_threads(), lambda _: None)
        synchronise(device)
        seconds = time.perf_counter() - start
    emit(figures, f"dictionary_{n}_rows_s", round(seconds, 1))
    emit(figures, "dictionary_peak_memory_mb", round(peak_memory_mb(device)))


def clustered_points(n: int, dims: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, size=(40, dims)).astype(np.float32)
    return centres[rng.integers(0, 40, size=n)] + rng.normal(0.0, 1.0, size=(n, dims)).astype(np.float32)


def measure_umap(figures, mode: dict) -> None:
    from activation_atlas.algorithms.layout import fit_umap
    from activation_atlas.runtime import RunError

    for backend, n in (("cuml", mode["umap_points"]), ("umap-learn", mode["umap_learn_points"])):
        points = clustered_points(n)
        start = time.perf_counter()
        try:
            fit_umap(points, n_neighbors=50, min_dist=0.05, metric="cosine", seed=0, backend=backend)
        except RunError as error:
            emit(figures, f"umap_{backend}", f"not run: {str(error).split(';')[0]}")
            continue
        emit(figures, f"umap_{backend}_{n}_points_s", round(time.perf_counter() - start, 1))


def paper_estimate(figures: dict, paper: dict, icons: int, step_fraction: float, mode_name: str) -> dict:
    """Hours of the paper config, stage by stage, from the measured throughputs."""
    images = paper["dataset"]["max_images"]
    layers = len(paper["layers"])
    icon_steps = icons * paper["render"]["steps"] * paper["render"]["attempts"] * step_fraction
    render_rate = max(v for k, v in figures.items() if k.startswith("render_B") and k.endswith("_per_s"))
    estimate = {
        "extract_hours_float32": images / figures["extract_float32_images_per_s"] / 3600,
        "extract_hours_bfloat16": images / figures["extract_bfloat16_images_per_s"] / 3600,
        "render_hours": icon_steps / render_rate / 3600,
    }
    measured_umap = {k: v for k, v in figures.items() if k.startswith("umap_") and isinstance(v, float)}
    for name, seconds in measured_umap.items():
        if name.endswith(f"_{images}_points_s"):  # only a measurement at the config's size is used
            estimate[f"layout_hours_{name.split('_')[1]}"] = layers * seconds / 3600
    return {k: round(v, 2) for k, v in estimate.items()} | {
        "assumes": f"{images} images, {layers} layers, {icons} icons × {paper['render']['steps']} steps × "
        f"{paper['render']['attempts']} attempts × {step_fraction}, one device; {mode_name} mode"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path, not the device")
    parser.add_argument("--icons", type=int, default=150_000, help="icons of the paper config (all layers, grids)")
    parser.add_argument(
        "--step-fraction",
        type=float,
        default=1.0,
        help="the fraction of the icon-steps a stopping rule spends (benchmarks/quality_per_step.py)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "gpu_check.json")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device is visible to torch here; use --device cpu (with --quick)")
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    paper = yaml.safe_load(PAPER_CONFIG.read_text())
    # Its defaults filled in, checked as the workflow checks it (its ImageNet folder need not be here).
    check_config(paper, REPO / "schemas" / "config.schema.yaml", check_files=False)
    figures: dict = {}
    emit(
        figures,
        "device",
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU, {torch.backends.cpu.get_cpu_capability()} kernels, "
        f"{torch.get_num_threads()} threads",
    )
    emit(figures, "torch", torch.__version__)
    emit(figures, "date", time.strftime("%Y-%m-%d"))
    start = time.perf_counter()
    measure_decoding(figures, args.device, mode)
    for autocast in (None, "bfloat16"):
        measure_extraction(figures, args.device, mode, paper["layers"], autocast)
    measure_rendering(figures, args.device, mode, {**paper["render"], "whiten": False})
    measure_umap(figures, mode)
    measure_dictionary(figures, args.device, mode)
    emit(figures, "seconds", round(time.perf_counter() - start, 1))
    figures["paper_config_estimate"] = paper_estimate(figures, paper, args.icons, args.step_fraction, mode_name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures["paper_config_estimate"], indent=2))


if __name__ == "__main__":
    main()
