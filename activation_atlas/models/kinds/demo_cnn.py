"""demo_cnn: a small CNN with stages conv1..convN (models/demo_cnn.py), trained by the workflow on the
generated dataset; its batch norms are folded into the convolutions for inference."""

from __future__ import annotations

from activation_atlas.models.kinds import ModelKind


def build(model_cfg: dict, num_classes: int | None):
    from activation_atlas.models.demo_cnn import DemoCNN

    return DemoCNN(channels=tuple(model_cfg["channels"]), num_classes=num_classes)


def known_layers(model_cfg: dict) -> tuple[str, ...]:
    return tuple(f"conv{k + 1}" for k in range(len(model_cfg["channels"])))


def prepare(model):
    from activation_atlas.models.demo_cnn import fold_batch_norm

    return fold_batch_norm(model)


KIND = ModelKind(
    name="demo_cnn", build=build, trained=True, keys=("channels",), known_layers=known_layers, prepare=prepare
)
