"""Class activation atlases: the activations of one layer that matter most for one class.

As in the paper, an activation belongs to class c's atlas when c is its most attributed class, or
when it is among the `top_n` activations with the highest attribution to c. The selection is then
laid out, binned on a small grid and rendered like any atlas.
"""
from __future__ import annotations

import re

import numpy as np


def class_atlas_layer(cfg: dict) -> str:
    """The layer of the class atlases: class_atlas.layer, or the last configured layer."""
    return cfg["class_atlas"]["layer"] or cfg["layers"][-1]


def resolve_class(spec, class_names: list[str]) -> int:
    """A class given by name or index → its index; an unknown one is an error with close matches."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        if not 0 <= index < len(class_names):
            raise ValueError(f"class index {index} is out of range: the model has {len(class_names)} classes")
        return index
    if spec in class_names:
        return class_names.index(spec)
    close = [name for name in class_names if spec.lower() in name.lower()][:10]
    hint = f"; names containing it: {', '.join(close)}" if close else ""
    raise ValueError(f"unknown class {spec!r}{hint}; valid: names from the model's label list or indices "
                     f"0–{len(class_names) - 1}")


def class_slug(name: str) -> str:
    """A file-name-safe form of a class name ('kit fox' → 'kit_fox')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def attribution_to(attribution: np.ndarray, attribution_class: np.ndarray | None, index: int) -> np.ndarray:
    """Each activation's attribution to class `index`; −inf where it was not among the stored top-k."""
    if attribution_class is None:
        return attribution[:, index].astype(np.float64)
    hit = attribution_class == index
    values = np.where(hit, attribution, -np.inf).max(axis=1)
    return values.astype(np.float64)


def top_attributed_class(attribution: np.ndarray, attribution_class: np.ndarray | None) -> np.ndarray:
    best = attribution.argmax(axis=1)
    return best if attribution_class is None else attribution_class[np.arange(len(best)), best]


def select_for_class(attribution: np.ndarray, attribution_class: np.ndarray | None, index: int,
                     top_n: int) -> np.ndarray:
    """Sorted row indices of the activations in class `index`'s atlas."""
    own = top_attributed_class(attribution, attribution_class) == index
    to_class = attribution_to(attribution, attribution_class, index)
    finite = np.flatnonzero(np.isfinite(to_class))
    strongest = finite[np.argsort(-to_class[finite], kind="stable")[:top_n]]
    chosen = np.union1d(np.flatnonzero(own), strongest)
    return chosen.astype(np.int64)
