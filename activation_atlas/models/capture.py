"""Naming a network's layers, and reading its intermediate layers by name with forward hooks."""

from __future__ import annotations

import difflib
from contextlib import contextmanager

import torch
from torch import nn

from activation_atlas.models.demo_cnn import DemoCNN
from activation_atlas.models.inceptionv1 import InceptionV1
from activation_atlas.runtime import RunError


class _StopForward(Exception):
    """Raised by a hook once every requested layer is captured, to skip the rest of the network."""


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """The layers an atlas can be made of."""
    if isinstance(model, DemoCNN):
        return tuple(model.stage_names)
    if isinstance(model, InceptionV1):
        return model.layer_names()
    return tuple(name for name, _ in model.named_modules() if name)


# Up to this many layers, an unknown name is answered with all of them; beyond, with the nearest.
LISTED_LAYERS = 20


def nearest_layers(name: str, valid) -> str:
    """What to say of an unknown layer name: every valid name when there are few, else the nearest."""
    valid = list(valid)
    if len(valid) <= LISTED_LAYERS:
        return f"valid layers: {', '.join(valid)}"
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.6) or difflib.get_close_matches(
        name, valid, n=5, cutoff=0.0
    )
    return f"nearest valid layers: {', '.join(close)} (of {len(valid)}: the names of model.named_modules())"


def resolve_layers(model: nn.Module, names, valid_names) -> dict[str, nn.Module]:
    """The modules for the requested layer names; an unknown name is an error listing the valid ones."""
    valid = list(valid_names)
    modules = dict(model.named_modules())
    resolved = {}
    for name in names:
        if name not in valid or name not in modules:
            raise RunError(f"unknown layer {name!r}; {nearest_layers(name, valid)}")
        resolved[name] = modules[name]
    return resolved


@contextmanager
def capture_layers(modules: dict[str, nn.Module], stop_when_complete: bool = False, inputs: bool = False):
    """Yield a dict that each forward pass fills with {layer name: output tensor} (with `inputs`: the
    tensor each was given). With stop_when_complete, the pass is cut short (_StopForward) once every
    layer is captured."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():

        def hook(_module, args, output=None, name=name):
            outputs[name] = args[0] if inputs else output
            if stop_when_complete and len(outputs) == len(modules):
                raise _StopForward

        handles.append(module.register_forward_pre_hook(hook) if inputs else module.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def forward_to_layers(model: nn.Module, modules: dict[str, nn.Module], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run the network only as far as the last requested layer and return those layers' outputs."""
    with capture_layers(modules, stop_when_complete=True) as outputs:
        try:
            model(x)
        except _StopForward:
            pass
        return dict(outputs)
