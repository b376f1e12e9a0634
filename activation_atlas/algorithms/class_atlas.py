"""Class activation atlases: the activations of one layer that matter most for one class.

As in the paper, an activation belongs to class c's atlas when c is its most attributed class, or
when it is among the `top_n` activations with the highest attribution to c. The selection is then
laid out, binned on a small grid and rendered like any atlas.
"""

from __future__ import annotations

import re

import numpy as np

from activation_atlas.algorithms.layout import lay_out
from activation_atlas.models.labels import logit_index
from activation_atlas.runtime import RunError


def resolve_class(spec, class_names: list[str]) -> int:
    """A class given by name, index (or its WordNet id, for ImageNet's label lists) → its index; an unknown one is an
    error with close matches."""
    if not class_names:
        raise RunError(f"class {spec!r}: the model card names no classes; rerun the model rule")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        if not 0 <= index < len(class_names):
            raise RunError(f"class index {index} is out of range: the model has {len(class_names)} classes")
        return index
    names = logit_index(class_names)
    if spec in names:
        return names[spec]
    close = [name for name in class_names if spec.lower() in name.lower()][:10]
    hint = f"; names containing it: {', '.join(close)}" if close else ""
    raise RunError(
        f"unknown class {spec!r}{hint}; valid: names from the model's label list or indices 0–{len(class_names) - 1}"
    )


def resolve_pair(pair: list, class_names: list[str]) -> tuple[int, int, str, str]:
    """A pair [a, b] of classes (names or indices) → (a's index, b's index, a's name, b's name)."""
    a, b = (resolve_class(spec, class_names) for spec in pair)
    return a, b, class_names[a], class_names[b]


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


def select_for_class(
    attribution: np.ndarray, attribution_class: np.ndarray | None, index: int, top_n: int
) -> np.ndarray:
    """Sorted row indices of the activations in class `index`'s atlas."""
    own = top_attributed_class(attribution, attribution_class) == index
    to_class = attribution_to(attribution, attribution_class, index)
    finite = np.flatnonzero(np.isfinite(to_class))
    strongest = finite[np.argsort(-to_class[finite], kind="stable")[:top_n]]
    chosen = np.union1d(np.flatnonzero(own), strongest)
    return chosen.astype(np.int64)


def attribution_or_floor(attribution: np.ndarray, attribution_class: np.ndarray | None, index: int) -> np.ndarray:
    """Each activation's attribution to class `index`; where only the top-k are stored and `index` is
    not among them, the smallest value stored for that activation (an upper bound of the true one)."""
    values = attribution_to(attribution, attribution_class, index)
    return np.where(np.isfinite(values), values, attribution.min(axis=1))


def select_for_comparison(
    attribution: np.ndarray, attribution_class: np.ndarray | None, first: int, second: int, top_n: int
) -> np.ndarray:
    """Sorted row indices of the activations in either class's atlas."""
    return np.union1d(
        select_for_class(attribution, attribution_class, first, top_n),
        select_for_class(attribution, attribution_class, second, top_n),
    )


def select(attribution: np.ndarray, attribution_class: np.ndarray | None, indices: list[int], top_n: int) -> np.ndarray:
    """Sorted row indices of a class atlas (one class index) or of a comparison (two)."""
    if len(indices) == 1:
        return select_for_class(attribution, attribution_class, indices[0], top_n)
    return select_for_comparison(attribution, attribution_class, *indices, top_n)


def comparison_x(attribution: np.ndarray, attribution_class: np.ndarray | None, first: int, second: int) -> np.ndarray:
    """Attribution to `first` minus attribution to `second`, divided by the largest absolute difference:
    in [−1, 1], +1 for the activation that favours `first` most."""
    difference = attribution_or_floor(attribution, attribution_class, first) - attribution_or_floor(
        attribution, attribution_class, second
    )
    scale = np.abs(difference).max() if len(difference) else 0.0
    return difference / scale if scale > 0 else np.zeros_like(difference)


def comparison_layout(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, 2) atlas coordinates in [0, 1]²: x from [−1, 1] (second class left, first class right), y
    already in [0, 1] (a 1-D embedding of the activations)."""
    return (
        np.column_stack([(np.asarray(x, dtype=np.float64) + 1.0) / 2.0, np.asarray(y, dtype=np.float64)])
        .clip(0.0, 1.0)
        .astype(np.float32)
    )


def lay_out_comparison(
    acts: np.ndarray,
    attribution: np.ndarray,
    attribution_class: np.ndarray | None,
    first: int,
    second: int,
    umap: dict,
    seed: int,
    log,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw coordinates (comparison_x, a 1-D UMAP) and atlas coordinates in [0, 1]² of a comparison."""
    x = comparison_x(attribution, attribution_class, first, second)
    y_raw, y = lay_out(acts, umap, seed, log, n_components=1)
    return np.column_stack([x, y_raw[:, 0]]).astype(np.float32), comparison_layout(x, y[:, 0])


def comparison_slug(pair) -> str:
    """The file-name-safe name of a comparison of two classes: 'a_vs_b'."""
    return f"{class_slug(str(pair[0]))}_vs_{class_slug(str(pair[1]))}"
