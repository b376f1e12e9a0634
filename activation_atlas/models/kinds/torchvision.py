"""torchvision: any torchvision classification model by name (model.architecture), with random weights
or a member of its weights enum (model.weights), fetched by torchvision itself into $TORCH_HOME and
named by the categories of the weights' metadata."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from activation_atlas.models.kinds import ModelKind
from activation_atlas.runtime import RunError, sha256_of

# The input normalisation of torchvision's ImageNet classification weights.
IMAGENET_NORMALISATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# torch.hub's naming of published weights: <name>-<first hex digits of the file's sha256>.<ext>.
HUB_HASH = re.compile(r"-([a-f0-9]{6,})\.")


def build(model_cfg: dict, num_classes: int | None):
    """torchvision's model by name, built with model.kwargs (e.g. a ViT's image_size); model.weights is
    the name of a member of its weights enum (its published hash checked on every load, unpickled as
    tensors only) or None/'none' for random initialisation."""
    import torch
    import torchvision

    architecture, weights = model_cfg["architecture"], model_cfg.get("weights")
    kwargs = model_cfg.get("kwargs") or {}
    available = torchvision.models.list_models(module=torchvision.models)
    if architecture not in available:
        raise RunError(f"unknown torchvision model {architecture!r}; valid: {', '.join(available)}")
    if weights in (None, "none"):
        weights = None
    else:
        member = weights_member(architecture, weights)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(member.url).path).name
        if cached.exists():  # torch.hub checks the hash only when it downloads
            check_published_hash(cached)
    with forced_weights_only():
        try:
            return torchvision.models.get_model(architecture, weights=weights, **kwargs)
        except (TypeError, ValueError) as error:
            raise RunError(
                f"model.kwargs = {kwargs}: torchvision's {architecture} (weights {weights}) refuses them: {error}"
            ) from None


def weights_member(architecture: str, weights: str):
    """The member of the architecture's weights enum that model.weights names (or DEFAULT)."""
    import torchvision

    enum = torchvision.models.get_model_weights(architecture)
    if weights not in enum.__members__ and weights != "DEFAULT":
        raise RunError(
            f"unknown weights {weights!r} for {architecture}; valid: {', '.join(['DEFAULT', *enum.__members__])}, none"
        )
    return enum.DEFAULT if weights == "DEFAULT" else enum[weights]


def shipped_labels(model_cfg: dict) -> list[str] | None:
    """The categories of the published weights' metadata (none for random weights)."""
    if model_cfg.get("weights") in (None, "none"):
        return None
    return list(weights_member(model_cfg["architecture"], model_cfg["weights"]).meta["categories"])


def normalisation(model_cfg: dict, model) -> dict:
    return IMAGENET_NORMALISATION


def check_published_hash(path: Path) -> None:
    """A torch.hub weights file is named <name>-<first hex digits of its sha256>.<ext>: its bytes must
    still have that hash (a file replaced or damaged in the cache is refused, not loaded)."""
    published = HUB_HASH.search(path.name)
    if published is None:
        raise RunError(f"{path}: its name carries no published hash (<name>-<sha256 prefix>.<ext>)")
    digest = sha256_of(path)
    if not digest.startswith(published.group(1)):
        raise RunError(
            f"{path} does not have the sha256 published in its name ({published.group(1)}…, it has "
            f"{digest[: len(published.group(1))]}…): it was altered or damaged; delete it "
            "to have it downloaded again"
        )


@contextmanager
def forced_weights_only():
    """torch.load loads tensors and plain containers only, whatever its caller asks (torch.hub, which
    torchvision loads published weights with, would otherwise unpickle arbitrary objects)."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


KIND = ModelKind(
    name="torchvision",
    build=build,
    keys=("input", "architecture", "weights", "kwargs", "layer_grids"),
    shipped_labels=shipped_labels,
    normalisation=normalisation,
)
