"""Layers the logits read only through a normalisation, and how they are attributed there.

A LayerNorm (or RMSNorm) gives the same output for h as for c·h, so its output does not change along
h: the attribution h·∂logit/∂h of a vector the logits read only through one is zero up to float
rounding, whatever the vector means to them. A pre-norm transformer's last block is such a layer: its
tokens reach the head through the final norm, which takes the block's output (torchvision's and timm's
ViTs), or its class token or the mean of its tokens (vit-pytorch's head: slice or pool, then
LayerNorm, then Linear). Such a layer is attributed at that norm's output z instead, as
(z − β)·∂logit/∂z with β the norm's bias: how much the logit would change, to first order, if the
normalised vector (less the bias every vector gets alike) were removed. With the norm's scale (the
deviation or root mean square it divides by) held at its value, z − β is linear in the norm's input and
so in each position of the layer that the input is sliced or pooled from: each position is given its
share, h·∂logit/∂h computed with the scale held, and the shares add up to (z − β)·∂logit/∂z (where the
norm takes the layer's output itself, each position's share is its own (z − β)·∂logit/∂z). Which layers,
and through which norm, is decided once, when the model is described, by one backward pass of a seeded
image, and recorded in the model card (`attributed_at`), which extraction reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from activation_atlas.models.capture import capture_layers
from activation_atlas.models.grids import LayerGrid

# Normalisations over each vector's channels alone (the last axis), which keep positions apart.
NORMALISATIONS = (nn.LayerNorm, nn.RMSNorm)
# Grids whose vectors lie along the output's last axis, as such a norm normalises them.
CHANNELS_LAST_GRIDS = ("tokens", "class_token", "vector", "channels_last")
# A layer's attribution at most this much of its norm's is float rounding.
ROUNDING = 1e-5
# A layer whose output, scaled by SCALED (exact in binary), changes no logit by more than BLIND of the
# largest is read through something blind to its scale (a norm's eps aside).
SCALED, BLIND = 1.125, 1e-3
# The shares of a layer's positions add up to the attribution at the norm's output within this much
# of their magnitudes where the norm's input is a slice or a pooling of the layer's output.
SHARES_ADD_UP = 1e-3


class ReadThrough(NamedTuple):
    norm: str  # the norm the layer is attributed at
    takes: str  # what of the layer's output that norm takes: "its output", "its class token", …


@dataclass(frozen=True)
class NormPass:
    """One forward pass's view of a norm that layers are attributed at."""

    output: torch.Tensor  # the norm's output z
    held: torch.Tensor  # z − β recomputed from the norm's input with the norm's scale held: linear in it

    def pulled_back(self, grad_at_output: torch.Tensor, layer_output: torch.Tensor) -> torch.Tensor:
        """The gradient at the layer's output of ⟨z, grad_at_output⟩, the norm's scale held."""
        return torch.autograd.grad(
            self.held, layer_output, grad_outputs=grad_at_output.to(self.held.dtype), retain_graph=True
        )[0]


def norm_bias(module: nn.Module) -> torch.Tensor | None:
    """The bias a normalisation adds to every vector alike (None where it has none)."""
    bias = getattr(module, "bias", None)
    return bias.detach() if isinstance(bias, torch.Tensor) else None


def scale_held(norm: nn.Module, given: torch.Tensor) -> torch.Tensor:
    """The norm's output less its bias for the input it was given, with the scale it divides by
    detached: the same values, and a gradient that treats that scale as a constant."""
    x = given.float()  # as autocast runs the norm
    eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
    if isinstance(norm, nn.LayerNorm):
        x = x - x.mean(dim=-1, keepdim=True)
    scale = (x.pow(2).mean(dim=-1, keepdim=True) + eps).sqrt()  # LayerNorm's deviation, RMSNorm's root mean square
    held = x / scale.detach()
    return held * norm.weight if norm.weight is not None else held


def norm_pass(norm: nn.Module, given: torch.Tensor, output: torch.Tensor) -> NormPass:
    return NormPass(output, scale_held(norm, given))


def attribution_map(grid: LayerGrid, vectors: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """(B, H, W): Σ over channels of vector × gradient at every position of the grid."""
    return (grid.as_maps(vectors) * grid.as_maps(grads)).sum(dim=1)


def per_vector_norms(model: nn.Module) -> dict[str, nn.Module]:
    """The model's normalisations over the last axis alone."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, NORMALISATIONS) and len(module.normalized_shape) == 1
    }


def what_is_taken(output: torch.Tensor, pulled: torch.Tensor) -> str:
    """What of a layer's output a norm's input is made of, from where the pulled-back gradient is not
    zero: its class token (the first token alone), one token, or a pooling of its positions."""
    read = pulled[0].abs().sum(dim=-1).flatten() > 0
    positions, count = read.numel(), int(read.sum())
    unit = "tokens" if output.dim() == 3 else "positions"
    if count == 1 and output.dim() == 3:
        first = int(read.nonzero()[0, 0])
        return "its class token" if first == 0 else f"its token {first}"
    return f"all its {unit}, pooled" if count == positions else f"{count} of its {positions} {unit}, pooled"


def read_directly(
    grid: LayerGrid,
    output: torch.Tensor,
    own: torch.Tensor | None,
    norm: nn.Module,
    norm_output: torch.Tensor,
    at_norm: torch.Tensor,
) -> bool:
    """Whether a norm that takes the layer's output is the only way the logits read it: the layer's own
    attribution is at most ROUNDING of the attribution at the norm's output, position by position."""
    bias = norm_bias(norm)
    normalised = norm_output.detach() - (bias if bias is not None else 0.0)
    through_norm = float(attribution_map(grid, normalised, at_norm).abs().max())
    direct = 0.0 if own is None else float(attribution_map(grid, output.detach(), own).abs().max())
    return through_norm > 0 and direct <= ROUNDING * through_norm


def blind_to_scale(model: nn.Module, module: nn.Module, image: torch.Tensor, logits: torch.Tensor) -> bool:
    """Whether the logits stay as they are, within BLIND of their largest, when the layer's output is
    scaled by SCALED: they read it only through something blind to its scale."""
    handle = module.register_forward_hook(lambda _module, _args, output: output * SCALED)
    try:
        with torch.no_grad():
            scaled = model(image)
    finally:
        handle.remove()
    return float((scaled - logits).abs().max()) <= BLIND * float(logits.abs().max())


def read_through_reduction(output: torch.Tensor, norm: NormPass, at_norm: torch.Tensor) -> str | None:
    """What of the layer a norm whose input is sliced or pooled from its output takes, where the positions'
    shares, h·∂logit/∂h with the norm's scale held, add up to the attribution at the norm's output (None
    where they do not: the norm's input is not a slice or pooling of the layer's output, or not only)."""
    pulled = torch.autograd.grad(norm.held, output, grad_outputs=at_norm, retain_graph=True, allow_unused=True)[0]
    if pulled is None:
        return None
    shares = (output.detach() * pulled).sum(dim=-1)
    magnitude = float(shares.abs().sum())
    at_output = float((norm.held.detach() * at_norm).sum())
    if magnitude == 0.0 or abs(float(shares.sum()) - at_output) > SHARES_ADD_UP * magnitude:
        return None
    return what_is_taken(output, pulled)


def layers_read_through_norms(
    model: nn.Module, modules: dict[str, nn.Module], grids: dict[str, LayerGrid], input_size: int, device: str
) -> dict[str, ReadThrough]:
    """{layer: the norm it is attributed at, and what of it that norm takes} for the atlas layers that
    the logits read only through one per-vector norm, for one seeded random image and a fixed mix of the
    logits: a norm that takes the layer's output (read_directly), else, where the logits are blind to the
    scale of the layer's output, one whose input is sliced or pooled from it (read_through_reduction)."""
    candidates = {layer: grid for layer, grid in grids.items() if grid.kind in CHANNELS_LAST_GRIDS}
    norms = per_vector_norms(model)
    if not candidates or not norms:
        return {}
    image = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)).to(device)
    image.requires_grad_(True)  # a graph through every layer, whether or not the weights take gradients
    with (
        torch.enable_grad(),
        capture_layers({layer: modules[layer] for layer in candidates}) as outputs,
        capture_layers(norms) as norm_outputs,
        capture_layers(norms, inputs=True) as norm_inputs,
    ):
        logits = model(image)
    mix = torch.linspace(1.0, 2.0, logits.shape[-1], device=logits.device)
    with torch.enable_grad():
        grads = torch.autograd.grad(
            (logits * mix).sum(),
            [outputs[layer] for layer in candidates] + [norm_outputs[name] for name in norms],
            retain_graph=True,
            allow_unused=True,
        )
        own = dict(zip(candidates, grads[: len(candidates)]))
        at_norms = {name: grad for name, grad in zip(norms, grads[len(candidates) :]) if grad is not None}
        passes = {name: norm_pass(norms[name], norm_inputs[name], norm_outputs[name]) for name in at_norms}
        found = {}
        for layer, grid in candidates.items():
            output = outputs[layer]
            direct = [name for name in at_norms if norm_inputs[name] is output]
            if len(direct) == 1 and read_directly(
                grid, output, own[layer], norms[direct[0]], norm_outputs[direct[0]], at_norms[direct[0]]
            ):
                found[layer] = ReadThrough(direct[0], "its output")
                continue
            if not blind_to_scale(model, modules[layer], image, logits.detach()):
                continue
            reductions = {
                name: taken
                for name in at_norms
                if name not in direct and (taken := read_through_reduction(output, passes[name], at_norms[name]))
            }
            if len(reductions) == 1:
                ((name, taken),) = reductions.items()
                found[layer] = ReadThrough(name, taken)
    return found
