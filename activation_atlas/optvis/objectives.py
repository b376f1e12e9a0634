"""The icon objective: an activation direction at the layer's centre position, and its fidelity."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def centre_vectors(layer_output: torch.Tensor) -> torch.Tensor:
    """(B, C) activations at the centre spatial position of a (B, C, H, W) layer output."""
    _, _, h, w = layer_output.shape
    return layer_output[:, :, h // 2, w // 2]


def whitening_matrix(activations: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """S = (AᵀA/N + ε·I)⁻¹, the inverse second moment; ε = ridge × mean diagonal keeps it invertible
    when channels are dead or collinear."""
    a = np.asarray(activations, dtype=np.float64)
    moment = a.T @ a / len(a)
    eps = ridge * max(np.trace(moment) / len(moment), 1e-12)
    return np.linalg.inv(moment + eps * np.eye(len(moment))).astype(np.float32)


def objective_directions(targets: torch.Tensor, whitening: torch.Tensor | None) -> torch.Tensor:
    """Unit directions to optimise towards: the targets, whitened (v·S) when S is given."""
    directions = targets @ whitening if whitening is not None else targets
    return F.normalize(directions, dim=1)


def direction_objective(acts: torch.Tensor, directions: torch.Tensor, cossim_pow: float) -> torch.Tensor:
    """Per icon: (h·u) · max(0.1, cos(h, u))^p, with u a unit direction and h the (B, C) activations."""
    dot = (acts * directions).sum(dim=1)
    cos = dot / (acts.norm(dim=1) + 1e-6)
    return dot * cos.clamp(min=0.1) ** cossim_pow


def fidelity(acts: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cosine between each icon's activation and its target vector."""
    return F.cosine_similarity(acts, targets, dim=1, eps=1e-8)
