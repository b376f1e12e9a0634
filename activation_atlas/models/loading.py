"""Building a configured network and loading its weights. What differs from kind to kind is read
from the kind's module (models/kinds/); every loaded model takes RGB in [0, 1]: a model's own input
normalisation is applied by a forward pre-hook, so its module names stay those of the network."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from activation_atlas.models.checkpoint import load_checkpoint
from activation_atlas.models.kinds import model_kind


def build_model(model_cfg: dict, num_classes: int | None = None) -> nn.Module:
    """An untrained (or, for torchvision with weights, pretrained) network of the configured kind."""
    return model_kind(model_cfg["kind"]).build(model_cfg, num_classes)


def add_input_normalisation(model: nn.Module, mean, std) -> nn.Module:
    """Make the model take [0, 1] RGB: (x − mean) / std is applied before its forward."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def normalise(_module, args):
        x = args[0]
        return ((x - mean_t.to(x.device)) / std_t.to(x.device), *args[1:])

    model.register_forward_pre_hook(normalise)
    return model


def load_model(model_cfg: dict, weights: Path | str | None, num_classes: int | None = None,
               device: str = "cpu") -> nn.Module:
    """The configured network with its weights, ready for inference: eval mode, prepared as its kind
    says, [0, 1] input, channels_last, on `device`."""
    kind = model_kind(model_cfg["kind"])
    model = kind.build(model_cfg, num_classes)
    if weights is not None:
        load_checkpoint(model, weights)
    model.eval()
    if kind.prepare is not None:
        model = kind.prepare(model)
    normalisation = model_cfg.get("normalize")
    if normalisation is None and kind.normalisation is not None:
        normalisation = kind.normalisation(model_cfg, model)
    if normalisation:
        model = add_input_normalisation(model, normalisation["mean"], normalisation["std"])
    return model.to(device=device, memory_format=torch.channels_last)


def load_described_model(model_cfg: dict, weights: Path | str | None, card: dict, device: str = "cpu") -> nn.Module:
    """load_model with as many logits as the model card (read_card) names classes."""
    return load_model(model_cfg, weights, len(card["classes"]), device)
