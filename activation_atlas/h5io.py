"""Self-describing, byte-reproducible HDF5 files.

Every file carries its provenance as attributes (stage, package version, seed, model, layer, the config
fragment that made it, as JSON) and every dataset its unit and axis names. Nothing time-dependent is
written (no object timestamps), and files are written under a temporary name and renamed when complete,
so an interrupted job never leaves a file that looks finished.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from activation_atlas import __version__


@contextmanager
def create_h5(path: Path | str, stage: str, **provenance):
    """Open a new HDF5 file for writing under a temporary name; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with h5py.File(partial, "w", libver="earliest", track_order=False) as f:
            f.attrs["stage"] = stage
            f.attrs["package_version"] = __version__
            for key, value in provenance.items():
                f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            yield f
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_dataset(f: h5py.File, name: str, data: np.ndarray | None, unit: str, axes: str,
                  **options) -> h5py.Dataset:
    """A dataset with its unit and axis names as attributes and no timestamps. With data None it is
    preallocated (pass shape and dtype) and filled later in slices."""
    dataset = f.create_dataset(name, data=data, track_times=False, **options)
    dataset.attrs["unit"] = unit
    dataset.attrs["axes"] = axes
    return dataset
