"""The amplitude spectrum file: the mean Fourier amplitude of the dataset's images at one icon size,
in the decorrelated colour space icons are parameterised in (results/<run>/spectrum/<n>px.h5; read by
the render jobs of render.param maco)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activation_atlas.h5io import create_h5, open_h5, write_dataset

# name: (unit, axes)
DATASETS = {
    "amplitude": ("|rfft2| (orthonormal) of [0, 1] pixel values", "colour channel, frequency y, frequency x"),
}
ATTRIBUTES = ("stage", "package_version", "icon_size", "images", "seed", "config")


def write_spectrum(path: Path | str, amplitude: np.ndarray, **provenance) -> None:
    with create_h5(path, "spectrum", **provenance) as f:
        write_dataset(f, "amplitude", amplitude.astype(np.float32), *DATASETS["amplitude"])


def read_spectrum(path: Path | str) -> np.ndarray:
    with open_h5(path) as f:
        return f["amplitude"][:]
