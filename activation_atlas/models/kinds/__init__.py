"""The model kinds, one module each (model.kind in the config): how a kind's network is built, the
input normalisation and class names that come with it, the config keys only it takes, and whether
the workflow trains it. Nothing here imports torch: the config check reads the registry while
Snakemake builds its graph, and each kind imports its network only when it builds one.

A new kind is a module in this package that defines `KIND = ModelKind(...)`, plus its name in the
schema's enum of model.kind (schemas/config.schema.yaml)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activation_atlas.runtime import RunError


@dataclass(frozen=True)
class ModelKind:
    name: str
    # (model section, number of logits or None) -> an untrained (or, torchvision, published) nn.Module
    build: Callable[[dict, int | None], Any]
    # The workflow trains it on the generated dataset's train split (and it takes model.train).
    trained: bool = False
    # Keys of the model section that apply to this kind and only to the kinds that declare them too.
    keys: tuple[str, ...] = ()
    # (model section) -> the layers' names where known without loading weights, else None; a section
    # the network cannot be built from raises ValueError.
    known_layers: Callable[[dict], tuple[str, ...] | None] | None = None
    # (model section) -> the names of its logits that come with the model, else None; cheap ones are
    # read by the config check, the others (e.g. from a library's weights metadata) only by a job.
    shipped_labels: Callable[[dict], list[str] | None] | None = None
    labels_checked_before_jobs: bool = False
    # (model section, built model) -> {"mean", "std"} applied before its forward, when model.normalize
    # is not set; None: the model takes [0, 1] RGB as it is.
    normalisation: Callable[[dict, Any], dict | None] | None = None
    # (model with its weights, in eval mode) -> the model ready for inference (e.g. batch norms folded).
    prepare: Callable[[Any], Any] | None = None
    # (validated config) -> None, or raises ValueError: what only this kind requires of the config.
    check: Callable[[dict], None] | None = None
    # The kind describes what the Python API was handed (an object, not files): a workflow config refuses it.
    api_only: bool = False

    @property
    def config_keys(self) -> tuple[str, ...]:
        return self.keys + (("train",) if self.trained else ())


def discover() -> dict[str, ModelKind]:
    """Every module of this package's KIND, by name, in the order of the modules' names."""
    kinds = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        kind = importlib.import_module(f"{__name__}.{module.name}").KIND
        if kind.name != module.name:
            raise ImportError(f"{__name__}.{module.name} declares kind {kind.name!r}: name the module after it")
        kinds[kind.name] = kind
    return kinds


KINDS = discover()


def model_kind(name: str) -> ModelKind:
    """The kind of that name; an unknown name is refused with the valid ones."""
    if name not in KINDS:
        raise RunError(f"unknown model kind {name!r}; valid kinds: {', '.join(KINDS)}")
    return KINDS[name]


def kinds_taking(key: str) -> list[str]:
    """The kinds whose config takes model.<key> (empty: a key every kind takes)."""
    return [name for name, kind in KINDS.items() if key in kind.config_keys]


def kind_only_keys() -> list[str]:
    """The model section's keys that only some kinds take."""
    return sorted({key for kind in KINDS.values() for key in kind.config_keys})
