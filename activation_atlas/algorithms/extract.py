"""Activations at named layers → one HDF5 file per layer.

Each image contributes `positions_per_image` activation vectors per layer, taken at spatial positions
drawn from a generator seeded by (seed, layer, image index): the positions do not depend on batch size,
order or sharding. Positions within `exclude_edge` cells of the border are never drawn, since their
receptive fields run off the image.
"""

from __future__ import annotations

import time
import zlib
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from activation_atlas.algorithms.attribution import attribute_positions
from activation_atlas.data.image_folder import describe_upscaled
from activation_atlas.formats.activations import LayerWriter, create_activation_file
from activation_atlas.models.capture import capture_layers
from activation_atlas.models.grids import MAPS, LayerGrid
from activation_atlas.models.normalised import norm_pass
from activation_atlas.runtime import RunError


def layer_key(layer: str) -> int:
    """A stable integer for a layer name, to seed its positions independently of other layers."""
    return zlib.crc32(layer.encode())


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a bijective mix of uint64 values into well-spread hashes."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def draw_positions(
    seed: int, layer: str, image_indices, k: int, height: int, width: int, exclude_edge: int, shared: bool = False
) -> np.ndarray:
    """(len(image_indices)·k, 2) (row, col) positions, k per image, away from the border by
    exclude_edge cells.

    Each draw is a hash of (seed, layer, image index, draw number): a counter-based generator, so an
    image's positions are the same whatever batch or shard it is processed in, at no per-image cost.
    `shared`: the draws leave the layer out and are scaled to the layer's grid, so that every layer, of
    any model, drawn with one seed reads the same place of an image as near as its grid allows (the
    layers of an aligned atlas).
    """
    if height - 2 * exclude_edge < 1 or width - 2 * exclude_edge < 1:
        raise RunError(
            f"exclude_edge={exclude_edge} leaves no position in layer {layer!r} "
            f"of spatial size {height}×{width}; use at most {(min(height, width) - 1) // 2}"
        )
    with np.errstate(over="ignore"):
        stream = splitmix64(np.uint64(seed) ^ splitmix64(np.uint64(0 if shared else layer_key(layer))))
        images = np.repeat(np.asarray(image_indices, dtype=np.uint64), k)
        draws = np.tile(np.arange(k, dtype=np.uint64), len(np.atleast_1d(image_indices)))
        counter = splitmix64(stream ^ splitmix64(images)) + draws * np.uint64(2)
        row_hash, col_hash = splitmix64(counter), splitmix64(counter + np.uint64(1))
        rows_free, cols_free = np.uint64(height - 2 * exclude_edge), np.uint64(width - 2 * exclude_edge)
        if shared:  # the top 32 bits as a fraction of the free span: the same fraction on every grid
            rows = ((row_hash >> np.uint64(32)) * rows_free) >> np.uint64(32)
            cols = ((col_hash >> np.uint64(32)) * cols_free) >> np.uint64(32)
        else:
            rows, cols = row_hash % rows_free, col_hash % cols_free
    return np.stack([rows, cols], axis=1).astype(np.int64) + exclude_edge


@dataclass(frozen=True)
class ExtractSettings:
    """How activations are read from each image: the extract section's keys that extraction itself uses
    (the split, the batch size and the shards are the stage's), and the seed the positions are drawn with."""

    seed: int
    positions_per_image: int = 1
    exclude_edge: int = 1
    shared_positions: bool = False
    attribution: bool = False
    attribution_top_k: int | None = None  # None: every class; k: each image's k highest logits
    attribution_always: tuple[int, ...] = ()  # classes attributed before the top k
    autocast: str | None = None  # "bfloat16" or "float16": the model in mixed precision, the files float32
    channels_last: bool = True

    @classmethod
    def from_section(cls, extract: dict, seed: int, top_k: int | None, always: tuple[int, ...]) -> ExtractSettings:
        """The settings of an extract config section; top_k and always as the stage resolved them."""
        return cls(
            seed=seed,
            positions_per_image=extract["positions_per_image"],
            exclude_edge=extract["exclude_edge"],
            shared_positions=extract.get("shared_positions", False),
            attribution=extract["attribution"],
            attribution_top_k=top_k,
            attribution_always=always,
            autocast=extract["autocast"],
        )


@dataclass
class Batch:
    images: torch.Tensor  # (B, 3, H, W) float32 in [0, 1]
    indices: np.ndarray  # (B,) dataset image indices
    labels: np.ndarray  # (B,) class labels, -1 where unknown


def gather_positions(output: torch.Tensor, positions: np.ndarray, k: int) -> np.ndarray:
    """The (B·k, C) activation vectors of a (B, C, H, W) output at positions (B·k, 2), k per image."""
    batch_rows = torch.arange(output.shape[0]).repeat_interleave(k)
    rows = torch.from_numpy(positions[:, 0])
    cols = torch.from_numpy(positions[:, 1])
    return output[batch_rows, :, rows, cols].float().numpy()


def refuse_unread_layers(
    attributions: dict[str, np.ndarray], logits: np.ndarray, grids: dict[str, LayerGrid], rounding: float = 1e-5
) -> None:
    """At the first batch, stop when a layer's attributions are all zero (no logit depends on the
    positions it is read at) or at the level of float rounding against the logits (a vector read through
    a LayerNorm that was not found as the norm to attribute it at: models/normalised.py): every cell
    class, class atlas and comparison built on them would rank noise."""
    scale = float(np.abs(logits).max())
    for layer, values in attributions.items():
        largest = float(np.abs(values).max())
        if largest > rounding * scale or scale == 0.0:
            continue
        found = (
            f"extract.attribution: layer {layer!r} (read as {grids[layer]}) has attribution at most "
            f"{largest:.3g} for every activation of the first batch, against logits up to {scale:.3g}"
        )
        if largest == 0.0 and grids[layer].kind == "tokens" and grids[layer].prefix > 0:
            raise RunError(
                f"{found}: no logit depends on the positions it is read at (a class-token network reads "
                f"only its class token after its last block). Read it as its class token "
                f"(model.layer_grids: {{{layer}: class_token}}), pick an earlier layer, or set "
                f"extract.attribution: false"
            )
        why = (
            "no logit depends on it"
            if largest == 0.0
            else "float rounding: the logits read it through something blind to its scale, as a LayerNorm is, and "
            "no single norm that takes the layer's output, or a slice or pooling of it, was found to attribute it at"
        )
        raise RunError(
            f"{found}: {why}. Pick another layer, or set extract.attribution: false (cells then take "
            f"their images' most frequent label)"
        )


def attribution_said(top_k: int | None, always: tuple[int, ...], norm: str | None) -> str:
    """What a layer's file says of its attribution: to which classes, and at which output."""
    classes = (
        "all classes"
        if top_k is None
        else f"top {top_k} classes by logit" + (f" after classes {', '.join(map(str, always))}" if always else "")
    )
    return classes + (
        f", at the output of {norm} less its bias, each position's share with the norm's scale held "
        f"(the norm the logits read the layer through)"
        if norm
        else ""
    )


def extract_activations(
    model: nn.Module,
    layer_modules: dict[str, nn.Module],
    batches,
    n_images: int,
    out_paths: dict[str, Path],
    settings: ExtractSettings,
    *,
    provenance: dict,
    grids: dict[str, LayerGrid] | None = None,
    attributed_at: dict[str, str] | None = None,
    device: str = "cpu",
    log=print,
) -> dict:
    """Run every batch through the model once and write each layer's activation file.

    `grids` reads each layer's output as a (B, C, H, W) map (models.grids; default: it is one), so a
    position is a patch of a token layer's grid as it is a cell of a convolutional map; with
    `shared_positions` every layer reads the same place of an image (draw_positions).
    With `attribution`, each activation's attribution to the logits (see attribution.py) is stored
    too (ExtractSettings says to which classes); the first batch's log line says what attribution costs
    there. A layer in `attributed_at` is attributed at the output of the norm it names
    (models/normalised.py).
    Returns per-layer (channels, spatial size) and the throughput in images/s.
    """
    k = settings.positions_per_image
    grids = {layer: (grids or {}).get(layer, MAPS) for layer in layer_modules}
    attributed_at = attributed_at or {}
    named_modules = dict(model.named_modules()) if attributed_at else {}
    norms = {norm: named_modules[norm] for norm in attributed_at.values()}
    writers: dict[str, LayerWriter] = {}
    shapes = {}
    done, start = 0, time.perf_counter()
    with ExitStack() as stack:
        files = {
            layer: stack.enter_context(create_activation_file(out_paths[layer], layer, provenance))
            for layer in layer_modules
        }
        outputs = stack.enter_context(capture_layers(layer_modules))
        norm_outputs = stack.enter_context(capture_layers(norms))
        norm_inputs = stack.enter_context(capture_layers(norms, inputs=True))
        # Attribution needs gradients through the network; plain extraction needs none.
        stack.enter_context(torch.enable_grad() if settings.attribution else torch.inference_mode())
        for batch in batches:
            x = batch.images.to(device)
            if settings.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if settings.attribution:
                x.requires_grad_(True)  # builds the graph from the input, through every layer
            precision = (
                torch.autocast(torch.device(device).type, dtype=getattr(torch, settings.autocast))
                if settings.autocast
                else nullcontext()
            )
            forward_start = time.perf_counter()
            with precision:
                logits_tensor = model(x)
            forward_seconds = time.perf_counter() - forward_start
            logits = logits_tensor.detach().float().cpu().numpy()
            maps = {layer: grids[layer].as_maps(outputs[layer]) for layer in layer_modules}
            positions = {
                layer: draw_positions(
                    settings.seed,
                    layer,
                    batch.indices,
                    k,
                    *maps[layer].shape[2:],
                    settings.exclude_edge,
                    settings.shared_positions,
                ).astype(np.int32)
                for layer in layer_modules
            }
            if settings.attribution:
                attribution_start = time.perf_counter()
                passes = {
                    norm: norm_pass(module, norm_inputs[norm], norm_outputs[norm]) for norm, module in norms.items()
                }
                attributions, attributed_classes = attribute_positions(
                    logits_tensor,
                    {layer: outputs[layer] for layer in layer_modules},
                    grids,
                    positions,
                    k,
                    settings.attribution_top_k,
                    settings.attribution_always,
                    {layer: passes[norm] for layer, norm in attributed_at.items()},
                )
                if done == 0:
                    seconds = time.perf_counter() - attribution_start
                    log(
                        f"first batch: forward pass {forward_seconds:.2f} s, attribution to "
                        f"{attributed_classes.shape[1]} classes {seconds:.2f} s "
                        f"({seconds / max(forward_seconds, 1e-9):.1f}× the forward pass)"
                    )
                    refuse_unread_layers(attributions, logits, grids)
            for layer in layer_modules:
                output = maps[layer].detach().cpu()
                vectors = gather_positions(output, positions[layer], k)
                if layer not in writers:
                    shapes[layer] = tuple(output.shape[1:])
                    n_attributed = attributed_classes.shape[1] if settings.attribution else 0
                    writers[layer] = LayerWriter(
                        files[layer],
                        n_images * k,
                        output.shape[1],
                        logits.shape[1],
                        n_attributed,
                        settings.attribution_top_k is not None,
                    )
                    writers[layer].describe_sampling(
                        list(output.shape[2:]),
                        k,
                        settings.exclude_edge,
                        settings.shared_positions,
                        "none"
                        if not settings.attribution
                        else attribution_said(
                            settings.attribution_top_k, settings.attribution_always, attributed_at.get(layer)
                        ),
                    )
                writers[layer].write(
                    vectors,
                    np.repeat(batch.indices, k),
                    positions[layer],
                    np.repeat(batch.labels, k),
                    np.repeat(logits, k, axis=0),
                    attributions[layer] if settings.attribution else None,
                    attributed_classes if settings.attribution else None,
                )
            done += len(batch.indices)
            log(f"{done}/{n_images} images ({done / (time.perf_counter() - start):.0f} images/s)")
        unreadable = len(getattr(batches, "skipped", ()))
        upscaled = getattr(batches, "upscaled", [])
        if done + unreadable != n_images:
            raise RuntimeError(f"expected {n_images} images, got {done} (+ {unreadable} unreadable)")
        if unreadable:
            log(f"{unreadable} unreadable images skipped")
        if upscaled:
            log(describe_upscaled(upscaled, batches.input_size))
        for writer in writers.values():
            writer.finish(done, unreadable, len(upscaled))
    seconds = time.perf_counter() - start
    return {"shapes": shapes, "images_per_second": done / seconds, "seconds": seconds}


class ImageBatches:
    """Batches in dataset order. read(indices) returns a BatchRead at input_size px; the paths of
    skipped (unreadable) images collect in `skipped`, those of images scaled up in `upscaled`."""

    def __init__(self, read, labels: np.ndarray, batch_size: int, input_size: int, images: range | None = None):
        self.read, self.labels, self.batch_size, self.input_size = read, labels, batch_size, input_size
        self.images = range(len(labels)) if images is None else images
        self.skipped: list = []
        self.upscaled: list = []

    def __iter__(self):
        for first in range(self.images.start, self.images.stop, self.batch_size):
            read = self.read(np.arange(first, min(first + self.batch_size, self.images.stop)))
            self.skipped += read.skipped
            self.upscaled += read.upscaled
            if len(read.kept):
                yield Batch(read.images, read.kept, self.labels[read.kept])
