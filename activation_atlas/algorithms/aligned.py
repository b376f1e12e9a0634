"""Aligned atlases' joint rows: two members' activations of the same patches, each scaled to unit
length and set side by side, so that with the cosine metric the distance of two rows is the mean of
the members' cosine distances and neither network outweighs the other (workflow/aligned.py: the
aligned config and its outputs)."""

from __future__ import annotations

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def joint_vectors(member_vectors: list[np.ndarray]) -> np.ndarray:
    """The members' rows, each scaled to unit length, side by side and scaled so that a joint row has
    unit length too: its cosine with another is the mean of the members' cosines."""
    return (np.concatenate([unit_rows(v) for v in member_vectors], axis=1) / np.sqrt(len(member_vectors))).astype(
        np.float32
    )
