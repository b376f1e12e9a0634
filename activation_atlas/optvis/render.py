"""Feature inversion of activation vectors, batched: one icon per target vector.

Every (icon, attempt) pair is an independent optimisation with its own generator, seeded by the
icon's key and the attempt number; pairs are packed into batches, and each icon keeps the attempt
with the highest final objective.

With a stopping rule (render.stop), an attempt stops early when its cosine to the objective's
direction has levelled off, and an attempt that trails its icon's best attempt by a margin is
dropped. Each decision reads only the icon's own attempts, which share a batch: an icon's result
does not depend on the other icons in its batch.
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
from activation_atlas.optvis.objectives import centre_vectors, direction_objective, fidelity, objective_directions
from activation_atlas.optvis.param import image_parameterisation
from activation_atlas.optvis.stopping import StopRule, StopTracker
from activation_atlas.optvis.transforms import TransformSpec, apply_transforms, draw_transforms
from activation_atlas.runtime import RunError


@dataclass(frozen=True)
class RenderSettings:
    icon_size: int
    steps: int
    attempts: int
    lr: float
    cossim_pow: float
    batch_size: int
    transforms: TransformSpec
    redirected_relu_steps: int = 0  # steps at the start that use the redirected ReLU gradient, if the model has one
    param: str = "fourier"  # the image parameterisation (optvis/param.py)
    stop: StopRule | None = None  # None: every attempt runs all its steps

    @classmethod
    def from_section(cls, render: dict) -> RenderSettings:
        """The settings of a render config section resolved for one layer (its job-level keys,
        whiten and cells_per_job, are the render stage's)."""
        t = render["transforms"]
        return cls(
            icon_size=render["icon_size"],
            steps=render["steps"],
            attempts=render["attempts"],
            lr=render["lr"],
            cossim_pow=render["cossim_pow"],
            batch_size=render["batch_size"],
            redirected_relu_steps=render["redirected_relu_steps"],
            param=render["param"],
            stop=StopRule.from_section(render.get("stop")),
            transforms=TransformSpec(
                pad=t["pad"],
                jitters=tuple(t["jitters"]),
                scale_base=t["scale_base"],
                scale_exponents=tuple(t["scale_exponents"]),
                rotation_deg=t["rotation_deg"],
            ),
        )


@dataclass
class Icons:
    images: np.ndarray  # (M, n, n, 3) uint8
    objective: np.ndarray  # (M,) final objective of the kept attempt, on the untransformed icon
    fidelity: np.ndarray  # (M,) cosine(activation of the icon, target vector)
    attempt: np.ndarray  # (M,) which attempt was kept
    steps: np.ndarray  # (M,) optimisation steps spent on the icon, all its attempts together


@dataclass
class Trace:
    """How every attempt went, for studies of the steps it takes (benchmarks/quality_per_step.py)."""

    every: int  # snapshots are taken every this many steps
    cosines: np.ndarray  # (M, A, steps) cosine to the objective's direction at each step, transformed
    snapshots: np.ndarray  # (M, A, steps // every, n, n, 3) uint8: the icon after every `every` steps


@dataclass
class Attempts:
    """Every attempt at every icon, before the best is kept."""

    images: np.ndarray  # (M, A, n, n, 3) uint8
    objective: np.ndarray  # (M, A)
    fidelity: np.ndarray  # (M, A)
    steps: np.ndarray  # (M, A) steps the attempt ran
    dropped: np.ndarray  # (M, A) bool: dropped by the stopping rule, never kept
    trace: Trace | None = None

    def best(self, first: int | None = None) -> Icons:
        """Each icon's attempt with the highest objective among those not dropped (among its first
        `first` attempts, where given)."""
        objective = np.where(self.dropped, -np.inf, self.objective)[:, :first]
        best = objective.argmax(axis=1)
        rows = np.arange(len(best))
        return Icons(
            self.images[rows, best],
            self.objective[rows, best],
            self.fidelity[rows, best],
            best.astype(np.int32),
            self.steps[:, :first].sum(axis=1).astype(np.int64),
        )


def layer_centre(
    model: nn.Module, layer: dict[str, nn.Module], images: torch.Tensor, grid: LayerGrid = MAPS
) -> torch.Tensor:
    """The (B, C) activations at the centre of the grid of the one layer in `layer`."""
    (output,) = forward_to_layers(model, layer, images).values()
    return centre_vectors(grid.as_maps(output))


def optimise_batch(
    model,
    layer,
    targets,
    directions,
    rngs,
    icon_of_row,
    settings: RenderSettings,
    amplitude,
    device,
    grid: LayerGrid,
    trace_every: int | None = None,
):
    """Optimise one batch of icon attempts; returns images in [0, 1], final objectives, fidelities, the
    steps each attempt ran, the attempts the stopping rule dropped and, with trace_every, each step's
    cosines (B, steps) and the icons every trace_every steps (B, K, n, n, 3) uint8."""
    image = image_parameterisation(settings.param, rngs, settings.icon_size, amplitude, device)
    transforms = torch.from_numpy(
        np.stack([draw_transforms(rng, settings.transforms, settings.steps) for rng in rngs])
    ).to(device)
    optimizer = torch.optim.Adam(image.parameters, lr=settings.lr)
    redirect = getattr(model, "set_redirected_relu", None)
    tracker = StopTracker(settings.stop, icon_of_row, settings.steps) if settings.stop else None
    cosines, snapshots = [], []
    for step in range(settings.steps):
        if redirect is not None:
            redirect(step < settings.redirected_relu_steps)
        images, step_transforms, step_directions = image.images(), transforms[:, step], directions
        if tracker is not None:
            if not len(tracker.rows):
                break
            images, step_transforms, step_directions = (t[tracker.rows] for t in (images, step_transforms, directions))
        x = apply_transforms(images, step_transforms, settings.transforms.pad)
        acts = layer_centre(model, layer, x.contiguous(memory_format=torch.channels_last), grid)
        # A sum, not a mean: each icon's gradient is independent of the batch it is in.
        loss = -direction_objective(acts, step_directions, settings.cossim_pow).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if tracker is not None or trace_every:
            cosine = F.cosine_similarity(acts.detach(), step_directions, dim=1)
        if tracker is not None:
            tracker.hold_stopped(image.parameters)
            tracker.record(step, cosine, image.parameters)
        if trace_every:
            cosines.append(cosine.cpu())
            if (step + 1) % trace_every == 0:
                snapshots.append(quantised_pixels(image.images().detach()))
    if redirect is not None:
        redirect(False)
    steps_run = tracker.steps_run if tracker else torch.full((len(rngs),), settings.steps, dtype=torch.int64)
    dropped = tracker.dropped if tracker else torch.zeros(len(rngs), dtype=torch.bool)
    with torch.no_grad():
        # Judge the icon as it will be stored: quantised to 8 bits.
        final = (image.images() * 255.0).round() / 255.0
    objective, fidelities = judge_icons(model, layer, final, targets, directions, settings.cossim_pow, grid)
    trace = (torch.stack(cosines, dim=1).numpy(), np.stack(snapshots, axis=1)) if trace_every else None
    return final, objective, fidelities, steps_run, dropped, trace


def judge_icons(
    model,
    layer,
    images: torch.Tensor,
    targets: torch.Tensor,
    directions: torch.Tensor,
    cossim_pow: float,
    grid: LayerGrid,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective and fidelity of finished icons (B, 3, n, n) in [0, 1], untransformed."""
    with torch.no_grad():
        acts = layer_centre(model, layer, images.contiguous(memory_format=torch.channels_last), grid)
        return direction_objective(acts, directions, cossim_pow), fidelity(acts, targets)


def quantised_pixels(images: torch.Tensor) -> np.ndarray:
    """(B, 3, n, n) images in [0, 1] as stored: (B, n, n, 3) uint8."""
    return (images.permute(0, 2, 3, 1) * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def render_attempts(
    model: nn.Module,
    layer: dict[str, nn.Module],
    targets: np.ndarray,
    icon_keys,
    seed: int,
    settings: RenderSettings,
    whitening: np.ndarray | None = None,
    device: str = "cpu",
    log=print,
    amplitude: np.ndarray | None = None,
    grid: LayerGrid = MAPS,
    trace_every: int | None = None,
) -> Attempts:
    """Render every attempt at one icon per row of targets (M, C); icon_keys[m] is a tuple of ints
    naming icon m; `amplitude` is the dataset's amplitude spectrum (render.param maco); `grid` reads the
    layer's output as a map (models.grids); trace_every: keep a Trace, with snapshots every that many
    steps."""
    check_stop_batches(settings)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    m = len(targets)
    n = settings.icon_size
    jobs = [(i, attempt) for i in range(m) for attempt in range(settings.attempts)]
    images = np.zeros((m, settings.attempts, n, n, 3), dtype=np.uint8)
    objective = np.full((m, settings.attempts), -np.inf, dtype=np.float32)
    fidelities = np.zeros((m, settings.attempts), dtype=np.float32)
    steps = np.zeros((m, settings.attempts), dtype=np.int64)
    dropped = np.zeros((m, settings.attempts), dtype=bool)
    if trace_every:
        trace = Trace(
            trace_every,
            np.zeros((m, settings.attempts, settings.steps), np.float32),
            np.zeros((m, settings.attempts, settings.steps // trace_every, n, n, 3), np.uint8),
        )
    target_tensor = torch.from_numpy(np.asarray(targets, dtype=np.float32)).to(device)
    whitening_tensor = torch.from_numpy(whitening).to(device) if whitening is not None else None
    amplitude_tensor = torch.from_numpy(amplitude) if amplitude is not None else None
    start = time.perf_counter()
    for first in range(0, len(jobs), settings.batch_size):
        batch = jobs[first : first + settings.batch_size]
        icon_index = torch.tensor([i for i, _ in batch], device=device)
        rngs = [np.random.default_rng([seed, *icon_keys[i], attempt]) for i, attempt in batch]
        batch_targets = target_tensor[icon_index]
        directions = objective_directions(batch_targets, whitening_tensor)
        final, obj, fid, ran, drop, batch_trace = optimise_batch(
            model,
            layer,
            batch_targets,
            directions,
            rngs,
            icon_index,
            settings,
            amplitude_tensor,
            device,
            grid,
            trace_every,
        )
        icon, attempt = np.array(batch).T
        images[icon, attempt] = quantised_pixels(final)
        if trace_every:
            trace.cosines[icon, attempt], trace.snapshots[icon, attempt] = batch_trace
        objective[icon, attempt] = obj.cpu().numpy()
        fidelities[icon, attempt] = fid.cpu().numpy()
        steps[icon, attempt] = ran.cpu().numpy()
        dropped[icon, attempt] = drop.cpu().numpy()
        done = first + len(batch)
        spent = steps.sum() / (done * settings.steps)
        log(
            f"{done}/{len(jobs)} icon attempts ({time.perf_counter() - start:.1f} s"
            + (f", {spent:.0%} of their steps run)" if settings.stop else ")")
        )
    return Attempts(images, objective, fidelities, steps, dropped, trace if trace_every else None)


def render_icons(
    model: nn.Module,
    layer: dict[str, nn.Module],
    targets: np.ndarray,
    icon_keys,
    seed: int,
    settings: RenderSettings,
    whitening: np.ndarray | None = None,
    device: str = "cpu",
    log=print,
    amplitude: np.ndarray | None = None,
    grid: LayerGrid = MAPS,
) -> Icons:
    """One icon per row of targets (M, C): each icon's best attempt (render_attempts)."""
    return render_attempts(
        model, layer, targets, icon_keys, seed, settings, whitening, device, log, amplitude, grid
    ).best()


def check_stop_batches(settings: RenderSettings) -> None:
    """Dropping an attempt compares it with the icon's other attempts: they must share its batch."""
    stop = settings.stop
    if stop is not None and stop.prune_at is not None and settings.batch_size % settings.attempts:
        raise RunError(
            f"render.stop.prune_at needs every attempt of an icon in one batch: batch_size "
            f"({settings.batch_size}) must be a multiple of attempts ({settings.attempts})"
        )


def classify_icons(
    model: nn.Module, images: np.ndarray, input_size: int, batch_size: int, device: str = "cpu"
) -> np.ndarray:
    """The model's top-1 class of each icon (M, n, n, 3) uint8, scaled to the model's input size."""
    classes = []
    with torch.no_grad():
        for first in range(0, len(images), batch_size):
            x = torch.from_numpy(images[first : first + batch_size]).to(device).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[-1] != input_size:
                x = F.interpolate(
                    x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False
                )
            classes.append(model(x.contiguous(memory_format=torch.channels_last)).argmax(dim=1).cpu())
    return torch.cat(classes).numpy().astype(np.int32) if classes else np.zeros(0, np.int32)
