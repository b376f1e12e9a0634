"""Building a configured network and loading its weights. What differs from kind to kind is read
from the kind's module (models/kinds/); every loaded model takes RGB in [0, 1]: the input a network
was trained on (its channel order, pixel scale and normalisation) is made by a forward pre-hook, so
its module names stay those of the network."""
from __future__ import annotations

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


def add_input_conversion(model: nn.Module, channels: str = "rgb", scale: float = 1.0,
                         normalisation: dict | None = None) -> nn.Module:
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


def load_model(model_cfg: dict, weights: Path | str | None, num_classes: int | None = None,
               device: str = "cpu", log=None) -> nn.Module:
    """The configured network with its weights, ready for inference: eval mode, prepared as its kind
    says, [0, 1] input, channels_last, on `device`. `log`: where to say how the checkpoint was read."""
    kind = model_kind(model_cfg["kind"])
    checkpoint = None
    if model_cfg.get("kwargs_from_checkpoint") and weights is not None:
        checkpoint = read_checkpoint(weights)   # read once: for its constructor arguments, then its weights
        model_cfg = {**model_cfg, "kwargs": checkpoint_kwargs(model_cfg, checkpoint, weights, log)}
    model = kind.build(model_cfg, num_classes)
    if weights is not None:
        load_checkpoint(model, weights, log, checkpoint)
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


def checkpoint_kwargs(model_cfg: dict, checkpoint, weights: Path | str, log=None) -> dict:
    """model.kwargs completed by the constructor arguments a PyTorch Lightning checkpoint keeps
    ('hyper_parameters'), those the factory takes (all of them if it takes **kwargs); model.kwargs win."""
    from activation_atlas.models.kinds.user import factory_parameters

    saved = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(saved, dict):
        raise RunError(f"model.kwargs_from_checkpoint: checkpoint {weights} has no 'hyper_parameters' entry (one "
                       "that PyTorch Lightning's checkpoints hold); set the factory's arguments in model.kwargs")
    accepted = factory_parameters(model_cfg)
    taken = {k: v for k, v in saved.items() if accepted is None or k in accepted}
    if log is not None:
        left = sorted(set(saved) - set(taken))
        log(f"model.kwargs_from_checkpoint: {', '.join(f'{k}={v!r}' for k, v in sorted(taken.items())) or 'nothing'} "
            f"from the checkpoint" + (f"; not arguments of the factory: {', '.join(left)}" if left else ""))
    return {**taken, **(model_cfg.get("kwargs") or {})}


def load_described_model(model_cfg: dict, weights: Path | str | None, card: dict, device: str = "cpu") -> nn.Module:
    """load_model with as many logits as the model card (read_card) names classes."""
    return load_model(model_cfg, weights, len(card["classes"]), device)
