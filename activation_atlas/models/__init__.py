"""The model zoo: building a configured network, loading its weights and naming its layers.

Kinds: `demo_cnn` and `demo_vit` (trained by the workflow), `inceptionv1` (the paper's network), `torchvision`
(any torchvision classification model by name), `timm` (any timm model by name, weights from a file or a
URL) and `user` (a factory function of the user's own package plus a checkpoint). Every loaded model takes RGB in [0, 1]: a model's own input
normalisation is applied by a forward pre-hook, so its module names stay those of the network.
"""
from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from activation_atlas.manifest import sha256_of
from activation_atlas.models.checkpoint import load_checkpoint
from activation_atlas.models.demo_cnn import DemoCNN, fold_batch_norm
from activation_atlas.models.demo_vit import build_demo_vit
from activation_atlas.models.inceptionv1 import InceptionV1
from activation_atlas.runtime import RunError

MODEL_KINDS = ("demo_cnn", "demo_vit", "inceptionv1", "torchvision", "timm", "user")
# The input normalisation of torchvision's ImageNet classification weights.
IMAGENET_NORMALISATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# torch.hub's naming of published weights: <name>-<first hex digits of the file's sha256>.<ext>.
HUB_HASH = re.compile(r"-([a-f0-9]{6,})\.")


def build_model(model_cfg: dict, num_classes: int | None = None) -> nn.Module:
    """An untrained (or, for torchvision with weights, pretrained) network of the configured kind."""
    kind = model_cfg["kind"]
    if kind == "demo_cnn":
        return DemoCNN(channels=tuple(model_cfg["channels"]), num_classes=num_classes)
    if kind == "demo_vit":
        return build_demo_vit(model_cfg["input_size"], model_cfg["vit"], num_classes)
    if kind == "inceptionv1":
        return InceptionV1()
    if kind == "torchvision":
        return build_torchvision(model_cfg["architecture"], model_cfg.get("weights"), model_cfg.get("kwargs") or {})
    if kind == "timm":
        return build_timm(model_cfg["architecture"], model_cfg.get("kwargs") or {})
    if kind == "user":
        add_python_path(model_cfg.get("python_path") or [])
        return build_user_model(model_cfg["factory"], model_cfg.get("kwargs") or {})
    raise RunError(f"unknown model kind {kind!r}; valid kinds: {', '.join(MODEL_KINDS)}")


def build_torchvision(architecture: str, weights: str | None, kwargs: dict | None = None) -> nn.Module:
    """torchvision's model by name, built with `kwargs` (e.g. a ViT's image_size); weights is the name
    of a member of its weights enum (fetched by torchvision's own mechanism into $TORCH_HOME, its
    published hash checked on every load, unpickled as tensors only) or None/'none' for random
    initialisation."""
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if architecture not in available:
        raise RunError(f"unknown torchvision model {architecture!r}; valid: {', '.join(available)}")
    kwargs = kwargs or {}
    if weights in (None, "none"):
        weights = None
    else:
        enum = torchvision.models.get_model_weights(architecture)
        if weights not in enum.__members__ and weights != "DEFAULT":
            raise RunError(f"unknown weights {weights!r} for {architecture}; valid: "
                           f"{', '.join(['DEFAULT', *enum.__members__])}, none")
        member = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(member.url).path).name
        if cached.exists():   # torch.hub checks the hash only when it downloads
            check_published_hash(cached)
    with forced_weights_only():
        try:
            return torchvision.models.get_model(architecture, weights=weights, **kwargs)
        except (TypeError, ValueError) as error:
            raise RunError(f"model.kwargs = {kwargs}: torchvision's {architecture} (weights {weights}) refuses "
                           f"them: {error}") from None


def build_timm(architecture: str, kwargs: dict) -> nn.Module:
    """timm's model by name with random weights, built with `kwargs` (a ViT's img_size, num_classes...);
    its weights come from model.checkpoint or model.url, as a user model's do."""
    import timm

    if not timm.is_model(architecture):
        names = timm.list_models()
        close = difflib.get_close_matches(architecture, names, n=8, cutoff=0.6) or names[:8]
        raise RunError(f"unknown timm model {architecture!r}; timm has {len(names)} models (timm.list_models()), "
                       f"the closest: {', '.join(close)}")
    try:
        return timm.create_model(architecture, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:
        raise RunError(f"model.kwargs = {kwargs}: timm's {architecture} refuses them: {error}") from None


def timm_normalisation(model: nn.Module) -> dict | None:
    """The mean and std a timm model's published weights were trained with (its pretrained config)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "mean" not in cfg or "std" not in cfg:
        return None
    return {"mean": tuple(cfg["mean"]), "std": tuple(cfg["std"])}


def check_published_hash(path: Path) -> None:
    """A torch.hub weights file is named <name>-<first hex digits of its sha256>.<ext>: its bytes must
    still have that hash (a file replaced or damaged in the cache is refused, not loaded)."""
    published = HUB_HASH.search(path.name)
    if published is None:
        raise RunError(f"{path}: its name carries no published hash (<name>-<sha256 prefix>.<ext>)")
    digest = sha256_of(path)
    if not digest.startswith(published.group(1)):
        raise RunError(f"{path} does not have the sha256 published in its name ({published.group(1)}…, it has "
                       f"{digest[:len(published.group(1))]}…): it was altered or damaged; delete it "
                       "to have it downloaded again")


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


def add_python_path(folders) -> None:
    """Make a user model's package importable (model.python_path)."""
    for folder in folders:
        resolved = str(Path(folder).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)


def build_user_model(factory: str, kwargs: dict) -> nn.Module:
    """Call `package.module:function(**kwargs)`."""
    module_name, sep, function_name = factory.partition(":")
    if not sep or not module_name or not function_name:
        raise RunError(f"model factory {factory!r} must look like 'package.module:function'")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if function is None:
        raise RunError(f"model factory {factory!r}: {module_name} has no attribute {function_name!r}")
    model = function(**kwargs)
    if not isinstance(model, nn.Module):
        raise RunError(f"model factory {factory!r} returned {type(model).__name__}, not a torch Module")
    return model


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """The layers an atlas can be made of."""
    if isinstance(model, DemoCNN):
        return tuple(model.stage_names)
    if isinstance(model, InceptionV1):
        return model.layer_names()
    return tuple(name for name, _ in model.named_modules() if name)


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
    """The configured network with its weights, ready for inference: eval mode, [0, 1] input,
    channels_last, on `device` (the demo CNN with its batch norms folded into the convolutions)."""
    model = build_model(model_cfg, num_classes)
    if weights is not None:
        load_checkpoint(model, weights)
    model.eval()
    if isinstance(model, DemoCNN):
        model = fold_batch_norm(model)
    normalisation = model_cfg.get("normalize")
    if normalisation is None and model_cfg["kind"] == "torchvision":
        normalisation = IMAGENET_NORMALISATION
    if normalisation is None and model_cfg["kind"] == "timm":
        normalisation = timm_normalisation(model)
    if normalisation:
        model = add_input_normalisation(model, normalisation["mean"], normalisation["std"])
    return model.to(device=device, memory_format=torch.channels_last)


def load_described_model(model_cfg: dict, weights: Path | str | None, card: dict, device: str = "cpu") -> nn.Module:
    """load_model with as many logits as the model card (read_card) names classes."""
    return load_model(model_cfg, weights, len(card["classes"]), device)
