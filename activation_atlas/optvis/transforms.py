"""Transformation robustness: every step sees each icon padded, jittered, scaled and rotated.

The paper's list — pad, several jitters, a random scale, a random rotation, a last jitter and a crop
back to the icon size — is composed into one affine map per icon and applied with a single
grid_sample, so each icon in a batch gets its own random transform. All draws for all steps are made
up front from the icon's own generator: an icon's result does not depend on which batch it is in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class TransformSpec:
    pad: int  # grey border (pixels) around the icon before jittering
    jitters: tuple[int, ...]  # successive uniform integer shifts in [-j, j] pixels
    scale_base: float  # scale = scale_base ** n, n uniform in scale_exponents
    scale_exponents: tuple[int, int]
    rotation_deg: float  # rotation uniform in [-rotation_deg, rotation_deg]


def draw_transforms(rng: np.random.Generator, spec: TransformSpec, steps: int) -> np.ndarray:
    """(steps, 4) parameters per step: shift_x, shift_y (pixels), scale, rotation (radians)."""
    shifts = np.zeros((steps, 2))
    for jitter in spec.jitters:
        shifts += rng.integers(-jitter, jitter + 1, size=(steps, 2))
    # A shift beyond the pad would show the sampling border rather than the grey pad.
    shifts = np.clip(shifts, -spec.pad, spec.pad)
    lo, hi = spec.scale_exponents
    scales = spec.scale_base ** rng.integers(lo, hi + 1, size=steps)
    angles = np.deg2rad(rng.uniform(-spec.rotation_deg, spec.rotation_deg, size=steps))
    return np.column_stack([shifts, scales, angles]).astype(np.float32)


def apply_transforms(images: torch.Tensor, params: torch.Tensor, pad: int) -> torch.Tensor:
    """Images (B, 3, n, n) in [0, 1] → transformed (B, 3, n, n); params (B, 4) from draw_transforms.

    The icon sits in a grey (0.5) border of `pad` pixels; the output window of n pixels is centred,
    shifted, scaled and rotated over it.
    """
    b, _, n, _ = images.shape
    padded = n + 2 * pad
    shift, scale, angle = params[:, :2], params[:, 2], params[:, 3]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output coordinates (normalised over n) → padded-image coordinates (normalised over n + 2·pad).
    ratio = (n / padded) / scale
    theta = torch.stack(
        [
            torch.stack([ratio * cos, -ratio * sin, 2 * shift[:, 0] / padded], dim=1),
            torch.stack([ratio * sin, ratio * cos, 2 * shift[:, 1] / padded], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [b, 3, n, n], align_corners=False)
    # Sampling (image − 0.5) with zero padding is sampling the image on a 0.5 grey border.
    grey_border = F.pad(images - 0.5, (pad, pad, pad, pad))
    return F.grid_sample(grey_border, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
