"""user: a network of the user's own package, built by calling model.factory ('package.module:function')
with model.kwargs, its package made importable by model.python_path, its weights from model.checkpoint
or model.url."""
from __future__ import annotations

import importlib
import sys
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


def build_user_model(factory: str, kwargs: dict):
    """Call `package.module:function(**kwargs)`."""
    from torch import nn

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


KIND = ModelKind(name="user", build=build,
                 keys=("factory", "kwargs", "python_path", "layer_grids", "url", "sha256", "checkpoint"))
