"""demo_vit: a small vision transformer (models/demo_vit.py, torchvision's blocks
encoder.layers.encoder_layer_0..K-1) trained by the workflow on the generated dataset, for square
images of model.input_size."""

from __future__ import annotations

from activation_atlas.models.kinds import ModelKind
from activation_atlas.runtime import RunError


def build(model_cfg: dict, num_classes: int | None):
    from activation_atlas.models.demo_vit import build_demo_vit

    return build_demo_vit(model_cfg["input_size"], model_cfg["vit"], num_classes)


def known_layers(model_cfg: dict) -> tuple[str, ...] | None:
    """Its blocks' and their parts' names, from the network built with random weights (a ViT these
    settings cannot build raises RunError)."""
    if model_cfg["input_size"] is None:
        return None
    from activation_atlas.models.capture import layer_names

    return layer_names(build(model_cfg, num_classes=1))


def check(config: dict) -> None:
    if config["model"]["input_size"] is None:
        raise RunError(
            "model.input_size is not set: demo_vit needs it (the side of the images its position "
            "embeddings are made for), e.g. the dataset's image_size"
        )


KIND = ModelKind(
    name="demo_vit", build=build, trained=True, keys=("vit", "layer_grids"), known_layers=known_layers, check=check
)
