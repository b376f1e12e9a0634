"""Self-describing, byte-reproducible HDF5 files.

Every file carries its provenance as attributes (stage, package version, seed, model, layer, the config
fragment that made it, as JSON) and every dataset its unit and axis names. Nothing time-dependent is
written (no object timestamps), and files are written under a temporary name and renamed when complete,
so an interrupted job never leaves a file that looks finished.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from activation_atlas import __version__
from activation_atlas.runtime import RunError, atomic_output


@contextmanager
def create_h5(path: Path | str, stage: str, **provenance):
    """Open a new HDF5 file for writing under a temporary name; rename it into place on success."""
    with atomic_output(path) as partial, h5py.File(partial, "w", libver="earliest", track_order=False) as f:
        f.attrs["stage"] = stage
        f.attrs["package_version"] = __version__
        for key, value in provenance.items():
            f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        yield f


def write_dataset(f: h5py.File, name: str, data: np.ndarray | None, unit: str, axes: str, **options) -> h5py.Dataset:
    """A dataset with its unit and axis names as attributes and no timestamps. With data None it is
    preallocated (pass shape and dtype) and filled later in slices."""
    dataset = f.create_dataset(name, data=data, track_times=False, **options)
    dataset.attrs["unit"] = unit
    dataset.attrs["axes"] = axes
    return dataset


def open_h5(path: Path | str) -> h5py.File:
    """An HDF5 file open for reading; one that cannot be read (truncated by a crash, damaged, not HDF5) is
    a RunError naming it and what to do."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        reason = str(error).split("(", 1)[-1].rstrip(")") if "(" in str(error) else str(error)
        raise RunError(
            f"{path} cannot be read as HDF5 ({reason}): it is damaged or incomplete; delete it and "
            "run again to have it made anew"
        ) from None


class H5Reader:
    """An HDF5 file open for reading, closed when its `with` block ends."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.file = open_h5(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        return False
