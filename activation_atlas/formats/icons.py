"""The icons file: the rendered icon of each kept cell of a grid, in the cells file's order
(results/<run>/icons/<layer>/grid<G>.h5, written in chunks by the render jobs and merged)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from activation_atlas.h5io import H5Reader, create_h5, open_h5, write_dataset

# name: (unit, axes)
DATASETS = {
    "row": ("cell", "icon"),
    "col": ("cell", "icon"),
    "icons": ("uint8 RGB", "icon, y, x, channel"),
    "objective": ("objective", "icon"),
    "fidelity": ("cosine", "icon"),
    "attempt": ("index", "icon"),
    "icon_class": ("class index", "icon; the model's top-1 class of the icon, fed at its input size"),
    "steps": ("optimisation steps", "icon; all its attempts together"),
}
OPTIONAL = ("steps",)  # written where the renderer had a stopping rule (render.stop)
ATTRIBUTES = ("stage", "package_version", "layer", "grid_size", "seed", "config")


def write_icons(path: Path | str, data: dict[str, np.ndarray], **provenance) -> None:
    with create_h5(path, "icons", **provenance) as f:
        for name, (unit, axes) in DATASETS.items():
            if name in data or name not in OPTIONAL:
                write_dataset(f, name, data[name], unit, axes)


def merge_icon_chunks(chunk_paths: list[Path | str], out_path: Path | str) -> int:
    """One grid's icon chunks, concatenated in order (the same file for any number of chunks);
    returns the number of icons."""
    with open_h5(chunk_paths[0]) as f:
        names = [name for name in DATASETS if name in f or name not in OPTIONAL]
    parts = {name: [] for name in names}
    for path in chunk_paths:
        with open_h5(path) as f:
            provenance = {k: v for k, v in f.attrs.items() if k not in ("stage", "package_version")}
            for name in names:
                parts[name].append(f[name][:])
    write_icons(out_path, {name: np.concatenate(arrays) for name, arrays in parts.items()}, **provenance)
    return sum(len(rows) for rows in parts["row"])


class IconsFile(H5Reader):
    """An icons file open for reading; `icons` is the HDF5 dataset, read when sliced (tile by tile)."""

    @property
    def grid_size(self) -> int:
        return int(self.file.attrs["grid_size"])

    @property
    def row(self) -> np.ndarray:
        return self.file["row"][:]

    @property
    def col(self) -> np.ndarray:
        return self.file["col"][:]

    @property
    def icons(self) -> h5py.Dataset:
        return self.file["icons"]

    @property
    def fidelity(self) -> np.ndarray:
        return self.file["fidelity"][:]

    @property
    def icon_class(self) -> np.ndarray:
        return self.file["icon_class"][:]

    @property
    def steps(self) -> np.ndarray | None:
        """Optimisation steps spent per icon; None where the renderer had no stopping rule."""
        return self.file["steps"][:] if "steps" in self.file else None
