"""user: a network of the user's own package, built by calling model.factory ('package.module:function')
with model.kwargs (completed, with model.kwargs_from_checkpoint, by the constructor arguments a
Lightning checkpoint keeps), its package made importable by model.python_path, its weights from
model.checkpoint or model.url."""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from activation_atlas.models.kinds import ModelKind
from activation_atlas.runtime import RunError


def build(model_cfg: dict, num_classes: int | None):
    add_python_path(model_cfg.get("python_path") or [])
    return build_user_model(model_cfg["factory"], model_cfg.get("kwargs") or {})


def add_python_path(folders) -> None:
    """Make a user model's package importable (model.python_path)."""
    for folder in folders:
        resolved = str(Path(folder).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)


def factory_function(factory: str):
    """The function `package.module:function` names."""
    module_name, sep, function_name = factory.partition(":")
    if not sep or not module_name or not function_name:
        raise RunError(f"model factory {factory!r} must look like 'package.module:function'")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if function is None:
        raise RunError(f"model factory {factory!r}: {module_name} has no attribute {function_name!r}")
    return function


@dataclass(frozen=True)
class FactoryParameters:
    named: frozenset[str]  # the keyword arguments it names
    takes_any: bool  # it also takes **kwargs


def factory_parameters(model_cfg: dict) -> FactoryParameters:
    """The keyword arguments the configured factory takes."""
    add_python_path(model_cfg.get("python_path") or [])
    parameters = inspect.signature(factory_function(model_cfg["factory"])).parameters.values()
    return FactoryParameters(
        frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)),
        any(p.kind is p.VAR_KEYWORD for p in parameters),
    )


def build_user_model(factory: str, kwargs: dict):
    """Call `package.module:function(**kwargs)`."""
    from torch import nn

    model = factory_function(factory)(**kwargs)
    if not isinstance(model, nn.Module):
        raise RunError(f"model factory {factory!r} returned {type(model).__name__}, not a torch Module")
    return model


def check(config: dict) -> None:
    model = config["model"]
    if model.get("kwargs_from_checkpoint") and not (model.get("checkpoint") or model.get("url")):
        raise ValueError(
            "model.kwargs_from_checkpoint reads the checkpoint's constructor arguments, but the model "
            "has no weights file: set model.checkpoint or model.url"
        )


KIND = ModelKind(
    name="user",
    build=build,
    check=check,
    keys=(
        "input",
        "factory",
        "kwargs",
        "kwargs_from_checkpoint",
        "python_path",
        "layer_grids",
        "url",
        "sha256",
        "checkpoint",
    ),
)
