"""Feature inversion of activation vectors, batched: one icon per target vector.

Every (icon, attempt) pair is an independent optimisation with its own generator, seeded by the
icon's key and the attempt number; pairs are packed into batches, and each icon keeps the attempt
with the highest final objective.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from activation_atlas.models.capture import forward_to_layers
from activation_atlas.models.grids import MAPS, LayerGrid
from activation_atlas.optvis.objectives import (centre_vectors, direction_objective, fidelity,
                                                objective_directions)
from activation_atlas.optvis.param import image_parameterisation
from activation_atlas.optvis.transforms import TransformSpec, apply_transforms, draw_transforms


@dataclass(frozen=True)
class RenderSettings:
    icon_size: int
    steps: int
    attempts: int
    lr: float
    cossim_pow: float
    batch_size: int
    transforms: TransformSpec
    redirected_relu_steps: int = 0   # steps at the start that use the redirected ReLU gradient, if the model has one
    param: str = "fourier"           # the image parameterisation (optvis/param.py)

    @classmethod
    def from_section(cls, render: dict) -> RenderSettings:
        """The settings of a render config section resolved for one layer (its job-level keys,
        whiten and cells_per_job, are the render stage's)."""
        t = render["transforms"]
        return cls(icon_size=render["icon_size"], steps=render["steps"], attempts=render["attempts"],
                   lr=render["lr"], cossim_pow=render["cossim_pow"], batch_size=render["batch_size"],
                   redirected_relu_steps=render["redirected_relu_steps"], param=render["param"],
                   transforms=TransformSpec(pad=t["pad"], jitters=tuple(t["jitters"]), scale_base=t["scale_base"],
                                            scale_exponents=tuple(t["scale_exponents"]),
                                            rotation_deg=t["rotation_deg"]))


@dataclass
class Icons:
    images: np.ndarray       # (M, n, n, 3) uint8
    objective: np.ndarray    # (M,) final objective of the kept attempt, on the untransformed icon
    fidelity: np.ndarray     # (M,) cosine(activation of the icon, target vector)
    attempt: np.ndarray      # (M,) which attempt was kept


def layer_centre(model: nn.Module, layer: dict[str, nn.Module], images: torch.Tensor,
                 grid: LayerGrid = MAPS) -> torch.Tensor:
    """The (B, C) activations at the centre of the grid of the one layer in `layer`."""
    (output,) = forward_to_layers(model, layer, images).values()
    return centre_vectors(grid.as_maps(output))


def optimise_batch(model, layer, targets, directions, rngs, settings: RenderSettings, amplitude, device,
                   grid: LayerGrid):
    """Optimise one batch of icons; returns images in [0, 1], final objectives and fidelities."""
    image = image_parameterisation(settings.param, rngs, settings.icon_size, amplitude, device)
    transforms = torch.from_numpy(np.stack([draw_transforms(rng, settings.transforms, settings.steps)
                                            for rng in rngs])).to(device)
    optimizer = torch.optim.Adam(image.parameters, lr=settings.lr)
    redirect = getattr(model, "set_redirected_relu", None)
    for step in range(settings.steps):
        if redirect is not None:
            redirect(step < settings.redirected_relu_steps)
        x = apply_transforms(image.images(), transforms[:, step], settings.transforms.pad)
        acts = layer_centre(model, layer, x.contiguous(memory_format=torch.channels_last), grid)
        # A sum, not a mean: each icon's gradient is independent of the batch it is in.
        loss = -direction_objective(acts, directions, settings.cossim_pow).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if redirect is not None:
        redirect(False)
    with torch.no_grad():
        # Judge the icon as it will be stored: quantised to 8 bits.
        final = (image.images() * 255.0).round() / 255.0
        acts = layer_centre(model, layer, final.contiguous(memory_format=torch.channels_last), grid)
        objective = direction_objective(acts, directions, settings.cossim_pow)
        return final, objective, fidelity(acts, targets)


def render_icons(model: nn.Module, layer: dict[str, nn.Module], targets: np.ndarray, icon_keys,
                 seed: int, settings: RenderSettings, whitening: np.ndarray | None = None,
                 device: str = "cpu", log=print, amplitude: np.ndarray | None = None,
                 grid: LayerGrid = MAPS) -> Icons:
    """Render one icon per row of targets (M, C); icon_keys[m] is a tuple of ints naming icon m;
    `amplitude` is the dataset's amplitude spectrum (render.param maco); `grid` reads the layer's output
    as a map (models.grids)."""
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    m = len(targets)
    n = settings.icon_size
    jobs = [(i, attempt) for i in range(m) for attempt in range(settings.attempts)]
    images = np.zeros((m, settings.attempts, n, n, 3), dtype=np.uint8)
    objective = np.full((m, settings.attempts), -np.inf, dtype=np.float32)
    fidelities = np.zeros((m, settings.attempts), dtype=np.float32)
    target_tensor = torch.from_numpy(np.asarray(targets, dtype=np.float32)).to(device)
    whitening_tensor = torch.from_numpy(whitening).to(device) if whitening is not None else None
    amplitude_tensor = torch.from_numpy(amplitude) if amplitude is not None else None
    start = time.perf_counter()
    for first in range(0, len(jobs), settings.batch_size):
        batch = jobs[first:first + settings.batch_size]
        icon_index = torch.tensor([i for i, _ in batch], device=device)
        rngs = [np.random.default_rng([seed, *icon_keys[i], attempt]) for i, attempt in batch]
        batch_targets = target_tensor[icon_index]
        directions = objective_directions(batch_targets, whitening_tensor)
        final, obj, fid = optimise_batch(model, layer, batch_targets, directions, rngs, settings, amplitude_tensor,
                                         device, grid)
        pixels = (final.permute(0, 2, 3, 1) * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        for row, (i, attempt) in enumerate(batch):
            images[i, attempt] = pixels[row]
            objective[i, attempt] = obj[row].item()
            fidelities[i, attempt] = fid[row].item()
        done = first + len(batch)
        log(f"{done}/{len(jobs)} icon attempts ({time.perf_counter() - start:.1f} s)")
    best = objective.argmax(axis=1)
    rows = np.arange(m)
    return Icons(images[rows, best], objective[rows, best], fidelities[rows, best], best.astype(np.int32))


def classify_icons(model: nn.Module, images: np.ndarray, input_size: int, batch_size: int,
                   device: str = "cpu") -> np.ndarray:
    """The model's top-1 class of each icon (M, n, n, 3) uint8, scaled to the model's input size."""
    classes = []
    with torch.no_grad():
        for first in range(0, len(images), batch_size):
            x = torch.from_numpy(images[first:first + batch_size]).to(device).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[-1] != input_size:
                x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True,
                                  align_corners=False)
            classes.append(model(x.contiguous(memory_format=torch.channels_last)).argmax(dim=1).cpu())
    return torch.cat(classes).numpy().astype(np.int32) if classes else np.zeros(0, np.int32)
