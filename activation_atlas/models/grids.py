"""How a layer's output is read as a grid of activation vectors: a (B, C, H, W) map.

Convolutional layers give such maps. Other layers do not: a transformer block gives a token sequence
(B, T, C), `prefix` leading tokens (a class token, register tokens) then an h×w grid of patch tokens
row by row, read as that grid (`tokens(prefix=P)`) or as its class token alone, one vector per image
(`class_token`: what a classifier that reads its class token sees of the block); Swin's blocks and
some ConvNeXt layers give channels-last maps (B, H, W, C); pooled and linear layers give vectors
(B, C), a 1×1 grid. The grid of each atlas layer is decided once, when the model is described: as the
config names it (`model.layer_grids`), else from a probe pass with a square image (a token layer whose
patch tokens the logits do not read, as in a class-token ViT's last block, is read as its class
token); it is recorded in the model card (`layer_grids`: the layers that do not give (B, C, H, W)
maps), which extraction and rendering read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from activation_atlas.models.capture import capture_layers
from activation_atlas.runtime import RunError

GRID_SPEC = re.compile(r"^(?:maps|channels_last|vector|class_token|tokens\(prefix=(\d{1,3})\))$")
GRID_SPECS = "maps, channels_last, vector, tokens(prefix=P), class_token"
# Leading tokens before the patch grid: a class token and up to 8 register tokens.
MAX_PREFIX = 9
# The dimensions of an output each kind of grid reads.
DIMENSIONS = {"maps": 4, "channels_last": 4, "vector": 2, "tokens": 3, "class_token": 3}


@dataclass(frozen=True)
class LayerGrid:
    kind: str = "maps"  # maps | channels_last | vector | tokens | class_token
    prefix: int = 0  # tokens: how many lead the patch grid

    def __str__(self) -> str:
        return f"tokens(prefix={self.prefix})" if self.kind == "tokens" else self.kind

    def as_maps(self, output: torch.Tensor) -> torch.Tensor:
        """The layer's output as (B, C, H, W), a view of it (gradients flow back through it)."""
        if self.kind == "maps":
            return output
        if self.kind == "channels_last":
            return output.permute(0, 3, 1, 2)
        if self.kind == "vector":
            return output[:, :, None, None]
        if self.kind == "class_token":
            return output[:, 0, :, None, None]
        patches = output[:, self.prefix :]
        side = math.isqrt(patches.shape[1])
        if side * side != patches.shape[1]:
            raise RunError(
                f"a layer read as {self} gives {output.shape[1]} tokens: {patches.shape[1]} after the "
                "prefix are not a square grid of patches"
            )
        return patches.unflatten(1, (side, side)).permute(0, 3, 1, 2)


MAPS = LayerGrid()
CLASS_TOKEN = LayerGrid("class_token")


def parse_grid(spec: str) -> LayerGrid:
    match = GRID_SPEC.match(spec)
    if match is None:
        raise RunError(f"unknown layer grid {spec!r}; valid: {GRID_SPECS}")
    if match.group(1) is not None:
        return LayerGrid("tokens", int(match.group(1)))
    return LayerGrid(spec)


def grid_of_shape(shape: tuple[int, ...], larger: tuple[int, ...] | None = None) -> LayerGrid | None:
    """The grid of an output of this shape, from a square input; None where the shape leaves it open.
    `larger`: the shape from a larger input, which tells a 4-d output's spatial axes (those that grew)."""
    if len(shape) == 2:
        return LayerGrid("vector")
    if len(shape) == 4:
        _, a, b, c = shape
        if larger is not None and len(larger) == 4:
            grew = tuple(before != after for before, after in zip(shape[1:], larger[1:]))
            return {(False, True, True): MAPS, (True, True, False): LayerGrid("channels_last")}.get(grew)
        if b == c and a != b:
            return MAPS
        if a == b and b != c:
            return LayerGrid("channels_last")
        return None
    if len(shape) == 3:
        tokens = shape[1]
        for prefix in range(min(MAX_PREFIX, tokens - 1) + 1):
            if math.isqrt(tokens - prefix) ** 2 == tokens - prefix:
                return LayerGrid("tokens", prefix)
    return None


def output_shapes(model: nn.Module, modules: dict[str, nn.Module], input_size: int, device: str) -> dict:
    """{layer: its output's shape, or what it gives instead of a tensor} for a grey square image."""
    grey = torch.full((1, 3, input_size, input_size), 0.5, device=device)
    with torch.no_grad(), capture_layers(modules) as outputs:
        model(grey)
    return {
        name: tuple(output.shape) if isinstance(output, torch.Tensor) else f"a {type(output).__name__}, not a tensor"
        for name, output in outputs.items()
    }


def unread_patch_tokens(
    model: nn.Module, modules: dict[str, nn.Module], grids: dict[str, LayerGrid], input_size: int, device: str
) -> list[str]:
    """The token layers (read with a prefix) whose patch tokens the logits do not depend on while
    their leading tokens do: for one seeded random image, the gradient of a fixed mix of the logits
    is zero at every patch token. A classifier that reads its class token gives this after its last
    block (the patches' attention into the class token ends there)."""
    if not grids:
        return []
    image = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)).to(device)
    image.requires_grad_(True)  # a graph through every layer, whether or not the weights take gradients
    with torch.enable_grad(), capture_layers({name: modules[name] for name in grids}) as outputs:
        logits = model(image)
        mix = torch.linspace(1.0, 2.0, logits.shape[-1], device=logits.device)
        grads = torch.autograd.grad((logits * mix).sum(), [outputs[name] for name in grids], allow_unused=True)
    unread = []
    for (name, grid), grad in zip(grids.items(), grads):
        if grad is None:
            continue
        patches, leading = grad[:, grid.prefix :].abs().max(), grad[:, : grid.prefix].abs().max()
        if leading > 0 and patches <= 1e-6 * leading:
            unread.append(name)
    return unread


def is_cube(shape) -> bool:
    """A 4-d output whose three axes after the batch have one size: its shape alone cannot tell a
    channels-first from a channels-last map."""
    return isinstance(shape, tuple) and len(shape) == 4 and len(set(shape[1:])) == 1


def decide_layer_grids(
    model: nn.Module,
    modules: dict[str, nn.Module],
    input_size: int,
    configured: dict[str, str],
    device: str = "cpu",
    log=None,
) -> dict[str, str]:
    """{layer: its grid} for the layers that do not give (B, C, H, W) maps: as configured, else from a
    forward pass of a grey square image (a 4-d output whose axes are of one size is probed again at a
    larger size, where the model allows it: the axes that grow are the spatial ones; a token layer whose
    patch tokens the logits do not read is read as its class token, and `log` says so). A layer whose grid
    cannot be decided, or whose configured grid does not fit its output, is an error naming it."""
    shapes = output_shapes(model, modules, input_size, device)
    larger = {}
    if any(is_cube(shapes.get(name)) for name in modules if name not in configured):
        try:
            larger = output_shapes(model, modules, input_size + input_size // 2, device)
        except Exception:  # a model made for one input size: its cube-shaped layers stay undecided
            larger = {}
    grids = {}
    for name in modules:
        shape = shapes.get(name, "not reached by a forward pass")
        said = "×".join(map(str, shape)) if isinstance(shape, tuple) else shape
        if isinstance(shape, tuple) and (not shape or shape[0] != 1):
            # A sequence-first (T, B, C) output (nn.MultiheadAttention's default layout) read as (B, T, C)
            # would give one token an image: refused.
            raise RunError(
                f"layer {name!r} gives {said} for one image: its first axis is not the batch (a "
                "sequence-first transformer?); pick a layer whose output leads with the batch"
            )
        if name in configured:
            grid = parse_grid(configured[name])
            if not (isinstance(shape, tuple) and len(shape) == DIMENSIONS[grid.kind]):
                raise RunError(f"model.layer_grids.{name} = {grid}: the layer gives {said}")
            try:
                grid.as_maps(torch.zeros(shape))  # tokens: the patches after the prefix must be a square
            except RunError as error:
                raise RunError(f"model.layer_grids.{name} = {grid}: {error}") from None
        else:
            grid = (
                grid_of_shape(shape, larger.get(name) if is_cube(shape) else None) if isinstance(shape, tuple) else None
            )
            if grid is None:
                raise RunError(
                    f"layer {name!r} gives {said}: how it maps to a grid of activation vectors cannot be "
                    f"told from its shape; name it in the config, e.g. model.layer_grids: "
                    f"{{{name}: tokens(prefix=1)}} (valid: {GRID_SPECS})"
                )
        grids[name] = grid
    inferred_tokens = {
        name: grid
        for name, grid in grids.items()
        if name not in configured and grid.kind == "tokens" and grid.prefix > 0
    }
    for name in unread_patch_tokens(model, modules, inferred_tokens, input_size, device):
        grids[name] = CLASS_TOKEN
        if log is not None:
            log(
                f"layer {name}: the logits do not read its patch tokens, only its class token, which it is "
                f"read as (an atlas of its patches would show what no class depends on: set model.layer_grids: "
                f"{{{name}: {inferred_tokens[name]}}} for one anyway)"
            )
    return {name: str(grid) for name, grid in grids.items() if grid != MAPS}


def card_layer_grid(card: dict, layer: str) -> LayerGrid:
    """The grid of `layer` as its model card records it (not recorded: a (B, C, H, W) map)."""
    return parse_grid(card.get("layer_grids", {}).get(layer, str(MAPS)))
