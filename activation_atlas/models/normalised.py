"""Layers the logits read only through a normalisation, and where their attribution is taken instead.

A LayerNorm (or RMSNorm) gives the same output for h as for c·h, so its output does not change along
h: the attribution h·∂logit/∂h of a vector the logits read only through one is zero up to float
rounding, whatever the vector means to them. A pre-norm transformer's last block is such a layer: its
tokens reach the head only through the final norm. Such a layer is attributed at that norm's output z
instead, as (z − β)·∂logit/∂z with β the norm's bias: how much the logit would change, to first order,
if the normalised vector (less the bias every vector gets alike) were removed. Which layers, and through
which norm, is decided once, when the model is described, by one backward pass of a seeded image, and
recorded in the model card (`attributed_at`), which extraction reads.
"""
from __future__ import annotations

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


def norm_bias(module: nn.Module) -> torch.Tensor | None:
    """The bias a normalisation adds to every vector alike (None where it has none)."""
    bias = getattr(module, "bias", None)
    return bias.detach() if isinstance(bias, torch.Tensor) else None


def attribution_map(grid: LayerGrid, vectors: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """(B, H, W): Σ over channels of vector × gradient at every position of the grid."""
    return (grid.as_maps(vectors) * grid.as_maps(grads)).sum(dim=1)


def per_vector_norms(model: nn.Module) -> dict[str, nn.Module]:
    """The model's normalisations over the last axis alone."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, NORMALISATIONS) and len(module.normalized_shape) == 1}


def layers_read_through_norms(model: nn.Module, modules: dict[str, nn.Module], grids: dict[str, LayerGrid],
                              input_size: int, device: str) -> dict[str, str]:
    """{layer: the norm it is attributed at} for the atlas layers whose output one per-vector norm is
    given, and whose own attribution, for one seeded random image and a fixed mix of the logits, is at
    most ROUNDING of the attribution at that norm's output."""
    candidates = {layer: grid for layer, grid in grids.items() if grid.kind in CHANNELS_LAST_GRIDS}
    norms = per_vector_norms(model)
    if not candidates or not norms:
        return {}
    image = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)).to(device)
    image.requires_grad_(True)   # a graph through every layer, whether or not the weights take gradients
    with (torch.enable_grad(), capture_layers({layer: modules[layer] for layer in candidates}) as outputs,
          capture_layers(norms) as norm_outputs, capture_layers(norms, inputs=True) as norm_inputs):
        logits = model(image)
        readers = {layer: [name for name, given in norm_inputs.items() if given is outputs.get(layer)]
                   for layer in candidates}
        readers = {layer: names[0] for layer, names in readers.items() if len(names) == 1}
        if not readers:
            return {}
        mix = torch.linspace(1.0, 2.0, logits.shape[-1], device=logits.device)
        tensors = [outputs[layer] for layer in readers] + [norm_outputs[name] for name in readers.values()]
        grads = torch.autograd.grad((logits * mix).sum(), tensors, allow_unused=True)
    found = {}
    for i, (layer, norm) in enumerate(readers.items()):
        own, at_norm = grads[i], grads[len(readers) + i]
        if at_norm is None:
            continue
        bias = norm_bias(norms[norm])
        normalised = norm_outputs[norm].detach() - (bias if bias is not None else 0.0)
        through_norm = float(attribution_map(grids[layer], normalised, at_norm).abs().max())
        direct = 0.0 if own is None else float(attribution_map(grids[layer], outputs[layer].detach(), own).abs().max())
        if through_norm > 0 and direct <= ROUNDING * through_norm:
            found[layer] = norm
    return found
