"""module: a network object handed to the Python API (activation_atlas.extract), described by the
model section the API records (its name, class names, input size and conventions). The workflow has
no object to build, so a config of this kind is refused by its check; the input normalisation of a
timm network is its pretrained config's, of a torchvision network ImageNet's, as for those kinds."""

from __future__ import annotations

from activation_atlas.models.kinds import ModelKind
from activation_atlas.models.kinds import timm as timm_kind
from activation_atlas.models.kinds.torchvision import IMAGENET_NORMALISATION
from activation_atlas.runtime import RunError


def build(model_cfg: dict, num_classes: int | None):
    raise RunError(
        f"model.kind = module names a network handed to the Python API ({model_cfg['name']}); there is none to "
        "build here: give the network to activation_atlas.extract, or describe it with kind user, timm or torchvision"
    )


def normalisation(model_cfg: dict, model) -> dict | None:
    """A timm network's pretrained config's mean and std; ImageNet's for a torchvision network."""
    found = timm_kind.normalisation(model_cfg, model)
    if found is None and type(model).__module__.startswith("torchvision.models"):
        return IMAGENET_NORMALISATION
    return found


KIND = ModelKind(
    name="module",
    build=build,
    keys=("input", "layer_grids"),
    normalisation=normalisation,
    api_only=True,
)
