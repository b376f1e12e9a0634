"""Building a configured network and loading its weights. What differs from kind to kind is read
from the kind's module (models/kinds/); every loaded model takes RGB in [0, 1]: the input a network
was trained on (its channel order, pixel scale and normalisation) is made by a forward pre-hook, so
its module names stay those of the network."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from activation_atlas.models.checkpoint import load_checkpoint, read_checkpoint
from activation_atlas.models.kinds import model_kind
from activation_atlas.runtime import RunError


def build_model(model_cfg: dict, num_classes: int | None = None) -> nn.Module:
    """An untrained (or, for torchvision with weights, pretrained) network of the configured kind."""
    return model_kind(model_cfg["kind"]).build(model_cfg, num_classes)


# ITU-R BT.601 luma weights (PIL's "L" mode): the grey a one-channel network is given of an RGB image.
LUMINANCE = (0.299, 0.587, 0.114)


def add_input_conversion(
    model: nn.Module, channels: str = "rgb", scale: float = 1.0, normalisation: dict | None = None
) -> nn.Module:
    """Make the model take [0, 1] RGB: before its forward, the image is given in the channel order it
    was trained on (`channels`: rgb, bgr, or gray: one luminance channel), times `scale` (255 for a
    network trained on 0–255 pixels), then (x − mean) / std per channel."""
    luminance = torch.tensor(LUMINANCE, dtype=torch.float32).view(1, 3, 1, 1)
    mean_t = std_t = None
    if normalisation:
        mean_t = torch.tensor(normalisation["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.tensor(normalisation["std"], dtype=torch.float32).view(1, -1, 1, 1)

    def convert(_module, args):
        x = args[0]
        if channels == "bgr":
            x = x.flip(1)
        elif channels == "gray":
            x = (x * luminance.to(x.device)).sum(dim=1, keepdim=True)
        if scale != 1.0:
            x = x * scale
        if mean_t is not None:
            x = (x - mean_t.to(x.device)) / std_t.to(x.device)
        return (x, *args[1:])

    if channels != "rgb" or scale != 1.0 or normalisation:
        model.register_forward_pre_hook(convert)
    return model


def load_model(
    model_cfg: dict, weights: Path | str | None, num_classes: int | None = None, device: str = "cpu", log=None
) -> nn.Module:
    """The configured network with its weights, ready for inference: eval mode, prepared as its kind
    says, [0, 1] input, channels_last, on `device`. `log`: where to say how the checkpoint was read."""
    kind = model_kind(model_cfg["kind"])
    checkpoint = None
    if model_cfg.get("kwargs_from_checkpoint") and weights is not None:
        checkpoint = read_checkpoint(weights)  # read once: for its constructor arguments, then its weights
        model_cfg = {**model_cfg, "kwargs": checkpoint_kwargs(model_cfg, checkpoint, weights, log)}
    model = kind.build(model_cfg, num_classes)
    if weights is not None:
        load_checkpoint(model, weights, log, checkpoint)
    return ready_for_inference(model, model_cfg, device)


def ready_for_inference(model: nn.Module, model_cfg: dict, device: str = "cpu") -> nn.Module:
    """A network with its weights made ready as its model section says: eval mode, prepared as its kind
    says, taking [0, 1] RGB (its normalisation: model.normalize, else its kind's), channels_last, on
    `device`."""
    kind = model_kind(model_cfg["kind"])
    model.eval()
    if kind.prepare is not None:
        model = kind.prepare(model)
    normalisation = model_cfg.get("normalize")
    if normalisation is None and kind.normalisation is not None:
        normalisation = kind.normalisation(model_cfg, model)
    convention = model_cfg.get("input") or {}
    model = add_input_conversion(model, convention.get("channels", "rgb"), convention.get("scale", 1.0), normalisation)
    return model.to(device=device, memory_format=torch.channels_last)


def as_the_model_sees(icons: np.ndarray, model_cfg: dict) -> np.ndarray:
    """(N, n, n, 3) uint8 icons as the network sees them: grey (their luminance in every channel) for a
    one-channel network, whose objective leaves colour free; as they are otherwise."""
    if (model_cfg.get("input") or {}).get("channels") != "gray":
        return icons
    grey = np.rint(icons.astype(np.float32) @ np.asarray(LUMINANCE, dtype=np.float32)).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


TOP = "hyper_parameters"


def argument_groups(saved: dict) -> dict[str, dict]:
    """Where a Lightning checkpoint keeps constructor arguments, by name: its hyper_parameters, and each
    dict (or argparse Namespace) one level below them (a LightningModule's `model_hparams`, say)."""
    groups = {TOP: saved}
    for key, value in saved.items():
        value = vars(value) if isinstance(value, argparse.Namespace) else value
        if isinstance(value, dict):
            groups[f"{TOP}.{key}"] = value
    return groups


def entry_name(group: str) -> str:
    """How model.kwargs_from_checkpoint names a group: the key of a dict in hyper_parameters, or
    hyper_parameters itself."""
    return group.removeprefix(TOP + ".")


def arguments_group(groups: dict[str, dict], factory, entry, weights) -> str:
    """The group the factory's arguments are read from: the one model.kwargs_from_checkpoint names, else
    the one group with keys the factory names; where none has, hyper_parameters, unless the factory takes
    **kwargs and dicts lie below (which of them holds its arguments cannot be told)."""
    if isinstance(entry, str):
        group = TOP if entry == TOP else f"{TOP}.{entry}"
        if group not in groups:
            raise RunError(
                f"model.kwargs_from_checkpoint = {entry!r}: checkpoint {weights} has no dict of that name in "
                f"its hyper_parameters; valid: {', '.join(map(entry_name, groups))}"
            )
        return group
    named = {group: sorted(set(values) & factory.named) for group, values in groups.items()}
    named = {group: keys for group, keys in named.items() if keys}
    if len(named) > 1:
        places = "; ".join(f"{group} ({', '.join(keys)})" for group, keys in named.items())
        raise RunError(
            f"model.kwargs_from_checkpoint: the factory's arguments are in more than one place of checkpoint "
            f"{weights}: {places}. Name the one to read: model.kwargs_from_checkpoint: one of "
            f"{', '.join(map(entry_name, named))}"
        )
    if named:
        return next(iter(named))
    below = [group for group in groups if group != TOP]
    if factory.takes_any and below:
        raise RunError(
            f"model.kwargs_from_checkpoint: the factory takes **kwargs and names none of the arguments in "
            f"checkpoint {weights}, whose hyper_parameters hold dicts ({', '.join(map(entry_name, below))}): "
            f"which of them holds its arguments cannot be told. Name the one to read: "
            f"model.kwargs_from_checkpoint: one of {', '.join(map(entry_name, groups))}"
        )
    return TOP


def checkpoint_kwargs(model_cfg: dict, checkpoint, weights: Path | str, log=None) -> dict:
    """model.kwargs completed by the constructor arguments a PyTorch Lightning checkpoint keeps: from its
    hyper_parameters or a dict one level below them (arguments_group), those the factory names, and with
    a factory that takes **kwargs the others but dicts (a dict of arguments is never taken as one
    argument it does not name); model.kwargs win. `log` says which were taken, from where, and which not."""
    from activation_atlas.models.kinds.user import factory_parameters

    saved = checkpoint.get(TOP) if isinstance(checkpoint, dict) else None
    if not isinstance(saved, dict):
        raise RunError(
            f"model.kwargs_from_checkpoint: checkpoint {weights} has no 'hyper_parameters' entry (one "
            "that PyTorch Lightning's checkpoints hold); set the factory's arguments in model.kwargs"
        )
    factory = factory_parameters(model_cfg)
    groups = argument_groups(saved)
    source = arguments_group(groups, factory, model_cfg["kwargs_from_checkpoint"], weights)
    group = groups[source]
    taken = {
        key: value
        for key, value in group.items()
        if key in factory.named or (factory.takes_any and not isinstance(value, (dict, argparse.Namespace)))
    }
    if log is not None:
        left = sorted(set(group) - set(taken))
        others = sorted(set(saved) - {entry_name(source)}) if source != TOP else []
        log(
            f"model.kwargs_from_checkpoint: {', '.join(f'{k}={v!r}' for k, v in sorted(taken.items())) or 'nothing'} "
            f"from {source}"
            + (f"; not arguments of the factory: {', '.join(left)}" if left else "")
            + (f"; the rest of {TOP}, not read: {', '.join(others)}" if others else "")
        )
    return {**taken, **(model_cfg.get("kwargs") or {})}


def load_described_model(model_cfg: dict, weights: Path | str | None, card: dict, device: str = "cpu") -> nn.Module:
    """load_model with as many logits as the model card (read_card) names classes."""
    return load_model(model_cfg, weights, len(card["classes"]), device)
