"""The model zoo: building a configured network, loading its weights and naming its layers.

Kinds: `demo_cnn` (trained by the workflow), `inceptionv1` (the paper's network), `torchvision`
(any torchvision classification model by name) and `user` (a factory function of the user's own
package plus a checkpoint). Every loaded model takes RGB in [0, 1]: a model's own input
normalisation is applied by a forward pre-hook, so its module names stay those of the network.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch
from torch import nn

from activation_atlas.formats.model_card import read_card
from activation_atlas.models.demo_cnn import DemoCNN, fold_batch_norm
from activation_atlas.models.inceptionv1 import InceptionV1

MODEL_KINDS = ("demo_cnn", "inceptionv1", "torchvision", "user")
LABEL_FILE_INCEPTIONV1 = Path(__file__).with_name("inceptionv1_labels.txt")
# The input normalisation of torchvision's ImageNet classification weights.
IMAGENET_NORMALISATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def build_model(model_cfg: dict, num_classes: int | None = None) -> nn.Module:
    """An untrained (or, for torchvision with weights, pretrained) network of the configured kind."""
    kind = model_cfg["kind"]
    if kind == "demo_cnn":
        return DemoCNN(channels=tuple(model_cfg["channels"]), num_classes=num_classes)
    if kind == "inceptionv1":
        return InceptionV1()
    if kind == "torchvision":
        return build_torchvision(model_cfg["architecture"], model_cfg.get("weights"))
    if kind == "user":
        add_python_path(model_cfg.get("python_path") or [])
        return build_user_model(model_cfg["factory"], model_cfg.get("kwargs") or {})
    raise ValueError(f"unknown model kind {kind!r}; valid kinds: {', '.join(MODEL_KINDS)}")


def build_torchvision(architecture: str, weights: str | None) -> nn.Module:
    """torchvision's model by name; weights is the name of a member of its weights enum (fetched by
    torchvision's own mechanism into $TORCH_HOME) or None/'none' for random initialisation."""
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if architecture not in available:
        raise ValueError(f"unknown torchvision model {architecture!r}; valid: {', '.join(available)}")
    if weights in (None, "none"):
        return torchvision.models.get_model(architecture, weights=None)
    enum = torchvision.models.get_model_weights(architecture)
    if weights not in enum.__members__ and weights != "DEFAULT":
        raise ValueError(f"unknown weights {weights!r} for {architecture}; valid: "
                         f"{', '.join(['DEFAULT', *enum.__members__])}, none")
    return torchvision.models.get_model(architecture, weights=weights)


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
        raise ValueError(f"model factory {factory!r} must look like 'package.module:function'")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if function is None:
        raise ValueError(f"model factory {factory!r}: {module_name} has no attribute {function_name!r}")
    model = function(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model factory {factory!r} returned {type(model).__name__}, not a torch Module")
    return model


def unwrap_state_dict(checkpoint) -> dict[str, torch.Tensor]:
    """The state dict inside the common checkpoint wrappers: a dict holding 'state_dict' or 'model'
    (possibly nested), and 'module.' prefixes left by DataParallel / DistributedDataParallel."""
    state = checkpoint
    while isinstance(state, dict) and any(k in state for k in ("state_dict", "model")) and not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        state = state["state_dict"] if "state_dict" in state else state["model"]
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("checkpoint holds no state dict (expected tensors, possibly under "
                         "'state_dict' or 'model')")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_checkpoint(model: nn.Module, path: Path | str) -> None:
    """Load a checkpoint strictly; a mismatch lists the missing and unexpected keys."""
    state = unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise ValueError(f"checkpoint {path} does not fit the model: missing keys {missing}; "
                         f"unexpected keys {unexpected}; wrong shapes {wrong_shape}")
    model.load_state_dict(state, strict=True)


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
    if normalisation:
        model = add_input_normalisation(model, normalisation["mean"], normalisation["std"])
    return model.to(device=device, memory_format=torch.channels_last)


def load_described_model(model_cfg: dict, weights: Path | str | None, model_card: Path | str,
                         device: str = "cpu") -> nn.Module:
    """load_model with as many logits as the model card names classes."""
    return load_model(model_cfg, weights, len(read_card(model_card)["classes"]), device)


def class_names(model_cfg: dict, dataset_classes: list[str]) -> list[str]:
    """Names of the model's logits: InceptionV1's shipped label list, torchvision's weight metadata,
    or the dataset's classes (demo and user models)."""
    if model_cfg["kind"] == "inceptionv1":
        labels = LABEL_FILE_INCEPTIONV1.read_text().splitlines()
        return labels + [f"unused {i}" for i in range(len(labels), 1008)]
    if model_cfg["kind"] == "torchvision" and model_cfg.get("weights") not in (None, "none"):
        import torchvision
        enum = torchvision.models.get_model_weights(model_cfg["architecture"])
        return list(enum[model_cfg["weights"]].meta["categories"] if model_cfg["weights"] != "DEFAULT"
                    else enum.DEFAULT.meta["categories"])
    return list(dataset_classes)
