"""A run's manifest (results/<run>/MANIFEST.json): every kept output file with its sha256 and size, and
for the files that carry the run's findings the figures a reviewer compares when bytes differ (see
activation_atlas.checking.verify): counts, means, class compositions, image statistics."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from activation_atlas.h5io import open_h5
from activation_atlas.runtime import RunError, sha256_of

FORMAT = "activation-atlas manifest 1"
MANIFEST_NAME = "MANIFEST.json"
NEIGHBOURS = 10  # a layout point's class region: the classes of its nearest neighbours in 2-D
BLOCK_ROWS = 1 << 16

# Relative path (POSIX) → kind of figures; files of no kind are compared by their bytes alone.
# "derived" files are views of others that carry figures (atlas tiles, the viewer's data and sheets):
# listed with their hashes, not compared beyond their presence where bytes differ.
KINDS = (
    (re.compile(r"(^|/)tiles/|^viewer/|^viewer\.html$"), "derived"),
    (re.compile(r"^activations/[^/]+\.h5$"), "activations"),
    (re.compile(r"^(layout/[^/]+|(class_atlas|dictionary)/[^/]+/layout)\.h5$"), "layout"),
    (re.compile(r"^(cells/[^/]+/grid\d+|(class_atlas|dictionary)/[^/]+/cells|dictionary/[^/]+/neurons)\.h5$"), "cells"),
    (re.compile(r"^(icons/[^/]+/grid\d+|(class_atlas|dictionary)/[^/]+/(neuron_)?icons)\.h5$"), "icons"),
    (re.compile(r"\.json$"), "json"),
    (re.compile(r"\.png$"), "image"),
)


# Folders kept as one entry: how many files they hold depends on the run's numbers (the viewer's
# thumbnail sheets, as many as the cells' sample images fill), so that every run lists the same entries.
FOLDER_ENTRIES = ("viewer/samples",)


def entry_name(relative: str) -> str:
    """The manifest entry a file (POSIX path relative to the run folder) is listed under."""
    return next((folder for folder in FOLDER_ENTRIES if relative.startswith(folder + "/")), relative)


def folder_sha256(file_digests: dict[str, str]) -> str:
    """A folder entry's digest: the sha256 of its files' names (relative to it) and digests, one
    `name<TAB>sha256` line each in name order; computable from a manifest that lists them one by one."""
    lines = "".join(f"{name}\t{file_digests[name]}\n" for name in sorted(file_digests))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_kind(relative: str) -> str | None:
    return next((kind for pattern, kind in KINDS if pattern.search(relative)), None)


def rounded(value: float) -> float:
    return round(float(value), 6)


def activation_figures(path: Path, run_dir: Path) -> dict:
    with open_h5(path) as f:
        acts = f["activations"]
        total, squares = np.zeros(acts.shape[1]), np.zeros(acts.shape[1])
        for start in range(0, acts.shape[0], BLOCK_ROWS):
            block = acts[start : start + BLOCK_ROWS].astype(np.float64)
            total += block.sum(axis=0)
            squares += (block**2).sum(axis=0)
        n = max(acts.shape[0], 1)
        mean = total / n
        return {
            "rows": int(acts.shape[0]),
            "channels": int(acts.shape[1]),
            "mean": rounded(mean.mean()),
            "rms": rounded(np.sqrt(squares.sum() / (n * max(acts.shape[1], 1)))),
        }


def class_neighbour_agreement(xy: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Per class, the share of its points' NEIGHBOURS nearest layout neighbours of the same class: how
    much of a region of its own the class has, whatever the layout's rotation or reflection."""
    from sklearn.neighbors import NearestNeighbors

    k = min(NEIGHBOURS, len(xy) - 1)
    if k < 1:
        return {}
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy)
    same = (labels[index[:, 1:]] == labels[:, None]).mean(axis=1)
    return {name: rounded(same[labels == c].mean()) for c, name in enumerate(classes) if (labels == c).any()}


def layout_figures(path: Path, run_dir: Path) -> dict:
    """Point count, and for a layer's layout its classes' neighbour agreement (labels from the layer's
    activation file, whose rows it lays out)."""
    with open_h5(path) as f:
        xy = f["xy"][:]
    figures = {"points": int(len(xy))}
    activations = run_dir / "activations" / path.name
    if path.parent.name == "layout" and activations.exists():
        with open_h5(activations) as f:
            labels, classes = f["label"][:], json.loads(f.attrs["classes"])
        figures["class_neighbour_agreement"] = class_neighbour_agreement(xy, labels, classes)
    return figures


def cell_figures(path: Path, run_dir: Path) -> dict:
    """Cells kept, the points in them, their mean purity and how many cells each class tops."""
    with open_h5(path) as f:
        count, histogram = f["count"][:], f["class_histogram"][:]
        classes = json.loads(f.attrs["classes"])
    top = histogram.argmax(axis=1) if len(count) else np.zeros(0, int)
    purity = histogram.max(axis=1) / np.maximum(histogram.sum(axis=1), 1) if len(count) else np.zeros(0)
    return {
        "cells": int(len(count)),
        "points_in_cells": int(count.sum()),
        "mean_purity": rounded(purity.mean()) if len(purity) else None,
        "cells_by_top_class": {name: int((top == c).sum()) for c, name in enumerate(classes)},
    }


def icon_figures(path: Path, run_dir: Path) -> dict:
    """Icon count and fidelity, and per icon its cell and mean colour (0–255): verify compares icons
    one by one where two runs kept the same cells."""
    with open_h5(path) as f:
        fidelity, icons = f["fidelity"][:], f["icons"]
        cells = np.stack([f["row"][:], f["col"][:]], axis=1)
        mean_rgb = np.zeros((len(icons), icons.shape[-1]))
        for start in range(0, len(icons), 256):
            mean_rgb[start : start + 256] = icons[start : start + 256].mean(axis=(1, 2))
    return {
        "icons": int(len(fidelity)),
        "mean_fidelity": rounded(fidelity.mean()) if len(fidelity) else None,
        "min_fidelity": rounded(fidelity.min()) if len(fidelity) else None,
        "mean_pixel": rounded(mean_rgb.mean()) if len(mean_rgb) else None,
        "per_icon": {"cell": cells.tolist(), "mean_rgb": np.round(mean_rgb, 2).tolist()},
    }


def flatten(value, prefix: str = "") -> dict:
    """Every scalar inside value (dicts and lists, nested) by its dotted path; list items by index."""
    if isinstance(value, list):
        value = dict(enumerate(value))
    if not isinstance(value, dict):
        return {prefix[:-1]: value}
    flat = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}{key}."))
    return flat


def json_figures(path: Path, run_dir: Path) -> dict:
    return flatten(json.loads(path.read_text()))


def image_figures(path: Path, run_dir: Path) -> dict:
    """Size, mode and per-channel mean and standard deviation of the pixels (0–255)."""
    with Image.open(path) as image:
        pixels = np.asarray(image, dtype=np.float64)
        mode = image.mode
    channels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    return {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "mode": mode,
        "mean": [rounded(v) for v in channels.mean(axis=(0, 1))],
        "std": [rounded(v) for v in channels.std(axis=(0, 1))],
    }


FIGURES = {
    "derived": lambda path, run_dir: {},
    "activations": activation_figures,
    "layout": layout_figures,
    "cells": cell_figures,
    "icons": icon_figures,
    "json": json_figures,
    "image": image_figures,
}


def kind_and_figures(path: Path, run_dir: Path) -> dict:
    """{"kind", "figures"} for a file that carries figures, else {}."""
    kind = file_kind(path.relative_to(run_dir).as_posix())
    return {} if kind is None else {"kind": kind, "figures": FIGURES[kind](path, run_dir)}


def files_in(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}


def entry_sha256(path: Path, files: dict[str, Path] | None = None) -> str:
    """A file's sha256, or a folder entry's (folder_sha256) over `files`, its files where given."""
    if path.is_dir():
        return folder_sha256({name: sha256_of(p) for name, p in (files or files_in(path)).items()})
    return sha256_of(path)


def file_entry(path: Path, run_dir: Path) -> dict:
    """A file's entry, or a folder entry's (FOLDER_ENTRIES) with the number of files it holds."""
    files = files_in(path) if path.is_dir() else None
    size = (
        {"bytes": sum(p.stat().st_size for p in files.values()), "files": len(files)}
        if files is not None
        else {"bytes": path.stat().st_size}
    )
    return {"sha256": entry_sha256(path, files), **size, **kind_and_figures(path, run_dir)}


def entry_paths(run_dir: Path, files) -> list[Path]:
    """The entries the files under run_dir are listed as: themselves, or their folder entry."""
    return sorted({run_dir / entry_name(f.relative_to(run_dir).as_posix()) for f in files})


def expand_files(paths) -> list[Path]:
    """The files named, with the files inside the folders named, sorted."""
    files = set()
    for path in map(Path, paths):
        if path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file())
        else:
            files.add(path)
    return sorted(files)


def build_manifest(run_dir, paths, run: str, log=print, seed: int | None = None) -> dict:
    """The manifest of the output files and folders `paths` inside run_dir, made with `seed`."""
    run_dir = Path(run_dir)
    files = entry_paths(run_dir, expand_files(paths))
    entries = {}
    for i, path in enumerate(files, 1):
        entries[path.relative_to(run_dir).as_posix()] = file_entry(path, run_dir)
        if i % 200 == 0 or i == len(files):
            log(f"{i}/{len(files)} files")
    return {"format": FORMAT, "run": run, **({"seed": seed} if seed is not None else {}), "files": entries}


def grouped_entries(entries: dict) -> dict:
    """A manifest's entries with the files of FOLDER_ENTRIES as one entry per folder, as manifests made
    before folder entries did not list them."""
    grouped, members = {}, {}
    for name, entry in entries.items():
        folder = entry_name(name)
        if folder == name:
            grouped[name] = entry
        else:
            members.setdefault(folder, {})[name[len(folder) + 1 :]] = entry
    for folder, files in members.items():
        grouped[folder] = {
            "sha256": folder_sha256({name: e["sha256"] for name, e in files.items()}),
            "bytes": sum(e["bytes"] for e in files.values()),
            "files": len(files),
            "kind": file_kind(folder),
            "figures": {},
        }
    return grouped


def read_manifest(path) -> dict:
    manifest = json.loads(Path(path).read_text())
    if manifest.get("format") != FORMAT:
        raise RunError(
            f"{path} is not a manifest of this workflow (format {manifest.get('format')!r}, expected {FORMAT!r})"
        )
    return {**manifest, "files": grouped_entries(manifest["files"])}
