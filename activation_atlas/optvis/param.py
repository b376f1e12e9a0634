"""Image parameterisation for feature inversion: a 1/f-scaled Fourier spectrum, decorrelated colour,
and a sigmoid into [0, 1] (after Olah et al., "Feature Visualization", Distill 2017)."""
from __future__ import annotations

import numpy as np
import torch

# Square root of the colour correlation of natural (ImageNet) images, the constant published with
# lucid's optvis (Apache-2.0); its columns are scaled to unit maximum norm below.
COLOR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02],
                                   [0.27, 0.00, -0.05],
                                   [0.27, -0.09, 0.03]], dtype=np.float32)


def spectrum_scale(size: int, decay_power: float = 1.0) -> torch.Tensor:
    """Per-frequency amplitude (size, size//2+1): 1/f, so every frequency starts at equal energy."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freq = np.sqrt(fx ** 2 + fy ** 2)
    scale = 1.0 / np.maximum(freq, 1.0 / size) ** decay_power
    return torch.from_numpy(scale.astype(np.float32))


class FourierImage:
    """A batch of images held as Fourier coefficients of decorrelated colour channels.

    `coefficients` (B, 3, size, size//2+1, 2) is the optimised tensor; images() maps it to
    (B, 3, size, size) RGB in [0, 1].
    """

    def __init__(self, initial: torch.Tensor, size: int, device="cpu"):
        self.size = size
        self.coefficients = initial.to(device).requires_grad_(True)
        self.scale = spectrum_scale(size).to(device)
        colour = COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SQRT, axis=0))
        self.colour = torch.from_numpy(colour).to(device)

    @staticmethod
    def initial_coefficients(rng: np.random.Generator, size: int, sd: float = 0.01) -> torch.Tensor:
        """Small random coefficients for one image, (3, size, size//2+1, 2), from rng."""
        shape = (3, size, size // 2 + 1, 2)
        return torch.from_numpy(rng.normal(0.0, sd, shape).astype(np.float32))

    def images(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.coefficients) * self.scale
        decorrelated = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        rgb = torch.einsum("bchw,dc->bdhw", decorrelated, self.colour)
        return torch.sigmoid(rgb)
