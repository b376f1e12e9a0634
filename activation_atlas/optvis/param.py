"""Image parameterisations for feature inversion, both in the Fourier domain of decorrelated colour
channels (after Olah et al., "Feature Visualization", Distill 2017):

- `fourier`: every coefficient is optimised, scaled by 1/f; a sigmoid maps the image into [0, 1].
- `maco`: only the phase is optimised; the amplitude is fixed to the mean amplitude spectrum of the
  dataset's own images, and each image is standardised before the sigmoid (Fel et al. 2023,
  "Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained Optimization").
"""

from __future__ import annotations

import numpy as np
import torch

from activation_atlas.runtime import RunError

PARAMS = ("fourier", "maco")
# Square root of the colour correlation of natural (ImageNet) images, the constant published with
# lucid's optvis (Apache-2.0); its columns are scaled to unit maximum norm.
COLOR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
DECORRELATED_TO_RGB = COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SQRT, axis=0))


def spectrum_scale(size: int, decay_power: float = 1.0) -> torch.Tensor:
    """Per-frequency amplitude (size, size//2+1): 1/f, so every frequency starts at equal energy."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    scale = 1.0 / np.maximum(freq, 1.0 / size) ** decay_power
    return torch.from_numpy(scale.astype(np.float32))


def to_rgb(decorrelated: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) decorrelated colour channels → RGB, before the sigmoid."""
    return torch.einsum("bchw,dc->bdhw", decorrelated, torch.from_numpy(DECORRELATED_TO_RGB).to(decorrelated.device))


def amplitude_spectra(images: torch.Tensor) -> torch.Tensor:
    """The amplitude spectra (N, 3, n, n//2+1), in double precision, of images (N, 3, n, n) in [0, 1], in
    the decorrelated colour space the images are parameterised in."""
    rgb_to_decorrelated = torch.from_numpy(np.linalg.inv(DECORRELATED_TO_RGB))
    decorrelated = torch.einsum("bchw,dc->bdhw", images.double(), rgb_to_decorrelated.double())
    return torch.fft.rfft2(decorrelated, norm="ortho").abs()


def mean_amplitude_spectrum(images: torch.Tensor) -> torch.Tensor:
    """The mean amplitude spectrum (3, n, n//2+1) of images (N, 3, n, n) in [0, 1]."""
    return amplitude_spectra(images).mean(dim=0).float()


class FourierImage:
    """A batch of images held as Fourier coefficients of decorrelated colour channels.

    `coefficients` (B, 3, size, size//2+1, 2) is the optimised tensor; images() maps it to
    (B, 3, size, size) RGB in [0, 1].
    """

    def __init__(self, rngs: list[np.random.Generator], size: int, device="cpu", sd: float = 0.01):
        self.size = size
        shape = (3, size, size // 2 + 1, 2)
        initial = np.stack([rng.normal(0.0, sd, shape).astype(np.float32) for rng in rngs])
        self.coefficients = torch.from_numpy(initial).to(device).requires_grad_(True)
        self.scale = spectrum_scale(size).to(device)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.coefficients]

    def images(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.coefficients) * self.scale
        decorrelated = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        return torch.sigmoid(to_rgb(decorrelated))


class MacoImage:
    """A batch of images held as the phases (B, 3, size, size//2+1) of a fixed amplitude spectrum."""

    def __init__(self, rngs: list[np.random.Generator], size: int, amplitude: torch.Tensor, device="cpu"):
        if tuple(amplitude.shape) != (3, size, size // 2 + 1):
            raise RunError(f"amplitude spectrum of shape {tuple(amplitude.shape)} does not fit {size} px icons")
        self.size = size
        shape = (3, size, size // 2 + 1)
        initial = np.stack([rng.uniform(-np.pi, np.pi, shape).astype(np.float32) for rng in rngs])
        self.phase = torch.from_numpy(initial).to(device).requires_grad_(True)
        self.amplitude = amplitude.to(device)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.phase]

    def images(self) -> torch.Tensor:
        spectrum = torch.polar(self.amplitude.expand_as(self.phase), self.phase)
        rgb = to_rgb(torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho"))
        mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
        std = rgb.std(dim=(1, 2, 3), keepdim=True)
        return torch.sigmoid((rgb - mean) / (std + 1e-4))


def image_parameterisation(
    param: str, rngs: list[np.random.Generator], size: int, amplitude: torch.Tensor | None, device="cpu"
):
    """A batch of icons under `param`, one per generator; maco needs the amplitude spectrum."""
    if param == "fourier":
        return FourierImage(rngs, size, device)
    if param == "maco":
        if amplitude is None:
            raise RunError("render.param maco needs the dataset's amplitude spectrum")
        return MacoImage(rngs, size, amplitude, device)
    raise RunError(f"unknown render.param {param!r}; valid: {', '.join(PARAMS)}")
