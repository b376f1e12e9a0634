"""The model zoo: building a configured network, loading its weights and naming its layers."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from activation_atlas.models.demo_cnn import DemoCNN, fold_batch_norm

MODEL_KINDS = ("demo_cnn",)


def build_model(model_cfg: dict, num_classes: int) -> nn.Module:
    """An untrained network of the configured kind; its forward takes RGB in [0, 1]."""
    kind = model_cfg["kind"]
    if kind == "demo_cnn":
        return DemoCNN(channels=tuple(model_cfg["channels"]), num_classes=num_classes)
    raise ValueError(f"unknown model kind {kind!r}; valid kinds: {', '.join(MODEL_KINDS)}")


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """The layers an atlas can be made of."""
    return tuple(model.stage_names)


def load_model(model_cfg: dict, weights: Path | str, num_classes: int, device: str = "cpu") -> nn.Module:
    """The configured network with its weights, ready for inference: eval mode, batch norms folded
    into their convolutions, channels_last, on `device`."""
    model = build_model(model_cfg, num_classes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model = fold_batch_norm(model.eval())
    return model.to(device=device, memory_format=torch.channels_last)
