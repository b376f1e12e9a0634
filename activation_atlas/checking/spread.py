"""The spread of a run's figures over seeds: reference/<run>/SPREAD.json beside its manifest.

A reference made with several seeds of one config (tools/make_reference.py) records, for every
numeric figure of every file, its lowest and highest value over those seeds: how far the method's
own findings move when nothing but the seed changes. verify accepts a figure inside that range,
widened by a stated margin, where rounding alone is not the measure (a run with another seed, or a
figure fragile by construction).
"""

from __future__ import annotations

import json
from pathlib import Path

from activation_atlas.checking.manifest import flatten
from activation_atlas.runtime import RunError, write_json

FORMAT = "activation-atlas figure spread 1"
SPREAD_NAME = "SPREAD.json"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def figure_spread(manifests: list[dict]) -> dict[str, dict[str, list[float]]]:
    """{file: {figure: [lowest, highest]}} over the manifests, for the numeric figures every manifest
    has (an icon's own figures are left out: the cells kept differ from seed to seed)."""
    files = {}
    for path in sorted(set.intersection(*(set(m["files"]) for m in manifests))):
        figures = [flatten(m["files"][path].get("figures", {})) for m in manifests]
        names = set.intersection(*(set(f) for f in figures))
        ranges = {
            name: [min(f[name] for f in figures), max(f[name] for f in figures)]
            for name in sorted(names)
            if not name.startswith("per_icon.") and all(is_number(f[name]) for f in figures)
        }
        if ranges:
            files[path] = ranges
    return files


def write_spread(path: Path, manifests: list[dict]) -> None:
    write_json(path, {"format": FORMAT, "seeds": [m.get("seed") for m in manifests], "files": figure_spread(manifests)})


def read_spread(reference_manifest: Path) -> dict | None:
    """The spread recorded beside a reference manifest, or None where there is none."""
    path = Path(reference_manifest).with_name(SPREAD_NAME)
    if not path.is_file():
        return None
    spread = json.loads(path.read_text())
    if spread.get("format") != FORMAT:
        raise RunError(
            f"{path} is not a figure spread of this workflow (format {spread.get('format')!r}, expected {FORMAT!r})"
        )
    return spread
