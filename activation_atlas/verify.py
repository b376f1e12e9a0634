"""Check a run against a reference manifest: every file of the reference is identical, equal within
tolerance (its figures, where its bytes differ), differs, or missing.

    python -m activation_atlas.verify RUN_DIR REFERENCE_MANIFEST [--report out.json]

Exit status 0 when every file is identical or within tolerance, 1 otherwise, 2 on a bad argument.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from activation_atlas.manifest import MANIFEST_NAME, file_entry, flatten, read_manifest

# Where bytes differ, the figures of a file are compared with these tolerances, by kind of file and
# figure name (first match): (absolute, relative); a figure that matches none must be equal. They cover
# the spread measured between runs that differ only in float rounding (README, Artifact evaluation).
COUNT = (2, 0.15)        # counts that follow the layout: cells kept, points in them, cells per class
SHARE = (0.05, 0.0)      # fractions: purity, fidelity, agreement, accuracy, trustworthiness
PIXEL = (6.0, 0.0)       # mean and spread of pixel values, 0–255
TOLERANCES = {
    "activations": ((r"^(mean|rms)$", (0.0, 0.01)),),
    "layout": ((r"^class_neighbour_agreement\.", SHARE),),
    "cells": ((r"^(cells|points_in_cells|cells_by_top_class\..+)$", COUNT), (r"^mean_purity$", SHARE)),
    "icons": ((r"^icons$", COUNT), (r"fidelity$", (0.1, 0.0)), (r"^(mean_pixel|per_icon\.mean_rgb\..+)$", PIXEL)),
    "image": ((r"^(mean|std)\.\d+$", PIXEL),),
    "json": ((r"(^|\.)(cells_kept|pure_cells)$", COUNT),
             (r"(fraction|purity|fidelity|agreement|accuracy|trustworthiness)[a-z_]*$", SHARE),
             (r"(^|\.)losses\.\d+$", (0.05, 0.1)), (r"(^|\.)[a-z_]*seconds$", (float("inf"), 0.0))),
}
IDENTICAL, WITHIN, DIFFERS, MISSING = "identical", "within tolerance", "differs", "missing"


@dataclass
class Difference:
    """A figure that is not equal in the two runs."""
    name: str
    reference: object
    actual: object
    tolerance: tuple[float, float]   # (absolute, relative to |reference|)
    within: bool

    def line(self) -> str:
        absolute, relative = self.tolerance
        return f"{self.name}: {self.reference} → {self.actual}" + (
            "" if self.within else f" (tolerance {absolute} + {relative}×|ref|)")


@dataclass
class FileCheck:
    path: str
    status: str
    notes: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def details(self) -> list[str]:
        return self.notes + [difference.line() for difference in self.differences]


def tolerance(kind: str, name: str) -> tuple[float, float]:
    return next((tol for pattern, tol in TOLERANCES.get(kind, ()) if re.search(pattern, name)), (0.0, 0.0))


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_figures(kind: str, reference: dict, actual: dict) -> tuple[list[str], list[Difference]]:
    """(notes, the figures that are not equal). Icons are compared one by one where both runs kept the
    same cells, else by their totals alone."""
    ref, act = flatten(reference), flatten(actual)
    notes = []
    if kind == "icons" and reference.get("per_icon", {}).get("cell") != actual.get("per_icon", {}).get("cell"):
        ref, act = ({k: v for k, v in figures.items() if not k.startswith("per_icon.")} for figures in (ref, act))
        notes.append("other cells kept: icons compared by count, fidelity and mean pixel only")
    differences = []
    for name in sorted(ref.keys() | act.keys()):
        a, b = ref.get(name), act.get(name)
        if a != b:
            absolute, relative = tolerance(kind, name)
            within = is_number(a) and is_number(b) and abs(a - b) <= absolute + relative * abs(a)
            differences.append(Difference(name, a, b, (absolute, relative), within))
    return notes, differences


def check_file(run_dir: Path, path: str, reference: dict) -> FileCheck:
    target = run_dir / path
    if not target.is_file():
        return FileCheck(path, MISSING)
    actual = file_entry(target, run_dir)
    if actual["sha256"] == reference["sha256"]:
        return FileCheck(path, IDENTICAL)
    if "figures" not in reference or actual.get("kind") != reference.get("kind"):
        return FileCheck(path, DIFFERS, ["bytes differ and the file has no figures to compare"])
    notes, differences = compare_figures(reference["kind"], reference["figures"], actual["figures"])
    if not differences:
        notes.append("bytes differ; every figure equal")
    status = WITHIN if all(d.within for d in differences) else DIFFERS
    return FileCheck(path, status, notes, differences)


def verify(run_dir, reference_manifest) -> tuple[list[FileCheck], list[str]]:
    """Each reference file's check, and the run's files the reference does not list."""
    run_dir = Path(run_dir)
    reference = read_manifest(reference_manifest)["files"]
    checks = [check_file(run_dir, path, entry) for path, entry in sorted(reference.items())]
    present = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    extra = sorted(present - set(reference) - {MANIFEST_NAME})
    return checks, extra


def summary_lines(checks: list[FileCheck], extra: list[str]) -> list[str]:
    counts = {status: sum(c.status == status for c in checks) for status in (IDENTICAL, WITHIN, DIFFERS, MISSING)}
    lines = [f"{c.status}: {c.path}" + "".join(f"\n    {d}" for d in c.details)
             for c in checks if c.status != IDENTICAL]
    lines += [f"not in the reference: {path}" for path in extra]
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()) + f" of {len(checks)} files")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m activation_atlas.verify", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="the run's folder, results/<run>")
    parser.add_argument("reference", type=Path, help="the reference MANIFEST.json")
    parser.add_argument("--report", type=Path, help="also write each file's check as JSON here")
    args = parser.parse_args(argv)
    for path in (args.run_dir, args.reference):
        if not path.exists():
            parser.error(f"{path} does not exist")
    checks, extra = verify(args.run_dir, args.reference)
    print("\n".join(summary_lines(checks, extra)))
    if args.report:
        args.report.write_text(json.dumps({"files": [asdict(c) for c in checks], "not_in_reference": extra},
                                          indent=2))
    return 0 if all(c.status in (IDENTICAL, WITHIN) for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
