"""Eval-mode batch norms folded into the convolutions that feed them, for stages that only read the
network (rendering): the same function up to float rounding, a fifth less work per optimisation step on
a network like EfficientNet-Lite0 (its batch norms, forward and backward, were 20 % of a render step).

Which convolution feeds which batch norm is seen, not assumed: one forward pass with hooks pairs each
nn.BatchNorm2d with the nn.Conv2d whose output tensor it was given. The arithmetic is torch's own
(torch.nn.utils.fusion.fuse_conv_bn_eval). A pair is left alone when the convolution is a layer the
caller reads (its output is the pre-norm activation). The folded network is then checked against the
original on a probe image; if they differ (a convolution's output also read elsewhere, say), the
original is kept and the log says why.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from activation_atlas.models.capture import capture_layers

# Folding moves each value by float rounding only; a structural mistake moves it by the norm's scale.
FOLDED_TOLERANCE = 1e-3


def conv_batch_norm_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """(convolution name, batch norm name) for every eval-mode batch norm with running statistics that
    was given a convolution's output, unchanged, in one forward pass on `probe`."""
    modules = dict(model.named_modules())
    conv_of_output: dict[int, str] = {}
    pairs = []
    handles = []

    def record_conv(name):
        def hook(_module, _args, output):
            conv_of_output[id(output)] = name

        return hook

    def pair_norm(name):
        def hook(_module, args):
            conv = conv_of_output.get(id(args[0]))
            if conv is not None:
                pairs.append((conv, name))

        return hook

    for name, module in modules.items():
        if type(module) is nn.BatchNorm2d and not module.training and module.running_mean is not None:
            handles.append(module.register_forward_pre_hook(pair_norm(name)))
        elif isinstance(module, nn.Conv2d) and not module.training:
            handles.append(module.register_forward_hook(record_conv(name)))
    try:
        with torch.no_grad():
            outputs = model(probe)  # kept alive until pairing is done, so no output's id is reused
    finally:
        for handle in handles:
            handle.remove()
    del outputs
    return list(dict.fromkeys(pairs))  # a module called twice pairs once


def fold_batch_norms(model: nn.Module, read_layers: list[str], probe: torch.Tensor, log) -> nn.Module:
    """The model with its batch norms folded into their convolutions (see the module's docstring), or
    the model itself where there is nothing to fold or the folded one does not compute the same."""
    pairs = [(conv, norm) for conv, norm in conv_batch_norm_pairs(model, probe) if conv not in read_layers]
    if not pairs:
        return model
    folded = copy.deepcopy(model)
    for conv_name, norm_name in pairs:
        conv, norm = folded.get_submodule(conv_name), folded.get_submodule(norm_name)
        folded.set_submodule(conv_name, fuse_conv_bn_eval(conv, norm))
        folded.set_submodule(norm_name, nn.Identity())
    difference = largest_difference(model, folded, read_layers, probe)
    if difference > FOLDED_TOLERANCE:
        log(
            f"batch norms not folded: the folded network differs from the original by {difference:.2g} "
            f"(relative) on a probe image"
        )
        return model
    log(
        f"{len(pairs)} batch norms folded into the convolutions before them (largest relative change "
        f"{difference:.1g} on a probe image)"
    )
    return folded.to(memory_format=torch.channels_last)


def outputs_and_read_layers(model: nn.Module, read_layers: list[str], probe: torch.Tensor) -> list[torch.Tensor]:
    """The network's output and its read layers' outputs on `probe`, from one forward pass."""
    with torch.no_grad(), capture_layers({name: model.get_submodule(name) for name in read_layers}) as read:
        output = model(probe)
        return [output, *(read[name] for name in read_layers)]


def largest_difference(model: nn.Module, folded: nn.Module, read_layers: list[str], probe: torch.Tensor) -> float:
    """The largest difference between the two networks' outputs and read layers on `probe`, relative to
    each tensor's largest magnitude."""
    pairs = zip(outputs_and_read_layers(model, read_layers, probe), outputs_and_read_layers(folded, read_layers, probe))
    return max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-12)) for a, b in pairs)
