"""timm: any timm model by name (model.architecture) with random weights, built with model.kwargs; its
weights come from model.checkpoint or model.url, as a user model's do, and its input normalisation
from its pretrained config."""

from __future__ import annotations

import difflib

from activation_atlas.models.kinds import ModelKind
from activation_atlas.runtime import RunError


def build(model_cfg: dict, num_classes: int | None):
    import timm

    architecture, kwargs = model_cfg["architecture"], model_cfg.get("kwargs") or {}
    if not timm.is_model(architecture):
        names = timm.list_models()
        close = difflib.get_close_matches(architecture, names, n=8, cutoff=0.6) or names[:8]
        raise RunError(
            f"unknown timm model {architecture!r}; timm has {len(names)} models (timm.list_models()), "
            f"the closest: {', '.join(close)}"
        )
    try:
        return timm.create_model(architecture, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:
        raise RunError(f"model.kwargs = {kwargs}: timm's {architecture} refuses them: {error}") from None


def normalisation(model_cfg: dict, model) -> dict | None:
    """The mean and std its published weights were trained with (its pretrained config)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "mean" not in cfg or "std" not in cfg:
        return None
    return {"mean": tuple(cfg["mean"]), "std": tuple(cfg["std"])}


KIND = ModelKind(
    name="timm",
    build=build,
    keys=("input", "architecture", "kwargs", "layer_grids", "url", "sha256", "checkpoint"),
    normalisation=normalisation,
)
