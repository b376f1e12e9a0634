"""The network the Python API works on: a torch module handed to it (model.kind module, described by
the model section the API records) or the network a run's config describes, loaded as the workflow's
jobs load it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from activation_atlas.api.config import checked, read_config
from activation_atlas.models.kinds import model_kind
from activation_atlas.runtime import RunError
from activation_atlas.workflow import paths, settings


class Model:
    """A network and the model section that says how to feed it: its class names, the side of its
    input, its normalisation and channel conventions, how its layers are read as grids. Everything
    left out is found from the network as the workflow finds it (a timm network's normalisation from its
    pretrained config, a torchvision network's is ImageNet's, the layers' grids from a probe pass).
    The API works on a copy: the module given is not changed."""

    def __init__(
        self,
        module,
        *,
        name: str | None = None,
        classes: list[str] | None = None,
        input_size: int | None = None,
        normalize: dict | None = None,
        channels: str = "rgb",
        scale: float = 1.0,
        resize: str = "resize_crop",
        layer_grids: dict[str, str] | None = None,
    ):
        self.module, self.loaded, self.measured = module, False, None
        self.section = {
            "kind": "module",
            "name": name or type(module).__name__,
            "labels": list(classes) if classes is not None else None,
            "input_size": input_size,
            "resize": resize,
            "normalize": {"mean": list(normalize["mean"]), "std": list(normalize["std"])} if normalize else None,
            **({"input": {"channels": channels, "scale": scale}} if (channels, scale) != ("rgb", 1.0) else {}),
            **({"layer_grids": dict(layer_grids)} if layer_grids else {}),
        }

    @classmethod
    def from_config(cls, config, weights=None) -> Model:
        """The network a run's config describes (a YAML file or a mapping), with its weights (default:
        where the workflow keeps or finds them), loaded as the workflow's jobs load it."""
        from activation_atlas.models.loading import load_model

        given = read_config(config)
        full = checked(given)
        weights = weights if weights is not None else settings.model_weights(full)
        if weights is not None and not Path(weights).is_file():
            raise RunError(
                f"no weights at {weights}: run the config's workflow first (snakemake --configfile <config> "
                f"{weights}), or give weights="
            )
        measured = None
        if model_kind(full["model"]["kind"]).trained:  # its classes and what its training measured
            training = Path(paths.ModelFiles(full["model"]["name"]).training)
            if not training.is_file():
                raise RunError(f"no {training} beside the trained weights: run the config's workflow first")
            measured = json.loads(training.read_text())
        model = cls.__new__(cls)
        n_classes = len(measured["classes"]) if measured else None
        model.module, model.loaded, model.measured = load_model(full["model"], weights, n_classes), True, measured
        model.section = given.get("model", {})  # as written: a call's check fills it in again
        return model

    @property
    def name(self) -> str:
        """The name its files record (model.name): the one given, else the module's class name."""
        return self.section["name"]

    def _ready(self, device: str):
        """The network as the stages take it: [0, 1] RGB in, eval mode, channels_last, on `device`."""
        if self.loaded:
            return self.module.to(device)
        from activation_atlas.models.loading import ready_for_inference

        return ready_for_inference(copy.deepcopy(self.module), self.section, device)

    def __repr__(self) -> str:
        return f"Model({self.name}: {self.section['kind']})"


def as_model(model) -> Model:
    """A Model as it is; a torch module described by its defaults."""
    if isinstance(model, Model):
        return model
    from torch import nn

    if isinstance(model, nn.Module):
        return Model(model)
    raise RunError(f"model is a {type(model).__name__}: give a torch.nn.Module or an activation_atlas.Model")
