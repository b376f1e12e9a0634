"""How far a run's figures move when nothing but the order of float operations changes: the config run
from scratch once as the reference, then again under each variant (other thread counts, vector kernels
capped with ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA, ...), each checked against the reference's
manifest as activation_atlas.checking.verify checks a reviewer's run. The largest deviation of each kind of
figure is what verify's tolerances must cover.

  python -m benchmarks.reproducibility [--config config/ci.yaml] [--set portable=True] [--variants ...]

Prints a Markdown table and keeps its figures in docs/measurements/reproducibility[-<label>].json (the runs
themselves stay under logs/benchmarks/).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from activation_atlas.checking.manifest import file_kind
from activation_atlas.checking.verify import DIFFERS, IDENTICAL, MISSING, WITHIN, verify
from activation_atlas.workflow.paths import RunFiles
from benchmarks import keep

REPO = Path(__file__).resolve().parents[1]

# name → (environment variables, --config values)
VARIANTS = {
    "rerun": ({}, {}),
    "threads 1": ({}, {"threads": 1}),
    "ATEN_CPU_CAPABILITY=default": ({"ATEN_CPU_CAPABILITY": "default"}, {}),
    "ATEN_CPU_CAPABILITY=avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, {}),
    "ONEDNN_MAX_CPU_ISA=SSE41": ({"ONEDNN_MAX_CPU_ISA": "SSE41"}, {}),
    "NUMBA_CPU_NAME=generic": ({"NUMBA_CPU_NAME": "generic"}, {}),
    "OPENBLAS_CORETYPE=Nehalem": ({"OPENBLAS_CORETYPE": "Nehalem"}, {}),
    "NPY_DISABLE_CPU_FEATURES=X86_V3": ({"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"}, {}),
}


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def run_workflow(config: Path, workdir: Path, env: dict, values: dict, cores: str) -> float:
    """Seconds to run the config from scratch in workdir."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--configfile",
        str(config),
        "--cores",
        cores,
        "--directory",
        str(workdir),
    ]
    if values:
        command += ["--config", *(f"{key}={value}" for key, value in values.items())]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def largest_deviations(checks) -> dict:
    """Per kind of file and figure (indices as #), the largest absolute difference seen."""
    largest = {}
    for check in checks:
        kind = file_kind(check.path)
        for difference in check.differences:
            key = f"{kind}: " + re.sub(r"\d+", "#", difference.name)
            try:
                delta = abs(float(difference.actual) - float(difference.reference))
            except (TypeError, ValueError):
                delta = float("inf")
            largest[key] = max(largest.get(key, 0.0), delta)
    return dict(sorted(largest.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "ci.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--config values for the reference and every variant (e.g. portable=True)",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "reproducibility")
    args = parser.parse_args()
    common = dict(item.split("=", 1) for item in args.set)
    label = "-".join(slug(item) for item in args.set)
    out = args.out.with_name(args.out.name + (f"-{label}" if label else ""))
    files = RunFiles(yaml.safe_load(args.config.read_text())["run"])
    reference_dir = out / "reference"
    seconds = {"reference": run_workflow(args.config, reference_dir, {}, common, args.cores)}
    reference = reference_dir / files.manifest
    rows, figures = [], {}
    for name in args.variants.split(","):
        env, values = VARIANTS[name]
        workdir = out / slug(name)
        seconds[name] = run_workflow(args.config, workdir, env, {**common, **values}, args.cores)
        checks, _ = verify(workdir / files.root, reference)
        counts = {status: sum(c.status == status for c in checks) for status in (IDENTICAL, WITHIN, DIFFERS, MISSING)}
        figures[name] = {
            "seconds": round(seconds[name], 1),
            **counts,
            "largest_deviations": largest_deviations(checks),
            "differing_files": [c.path for c in checks if c.status == DIFFERS],
        }
        rows.append(f"| {name} | {seconds[name]:.0f} | " + " | ".join(str(n) for n in counts.values()) + " |")
        print(rows[-1], flush=True)
    result = {
        "config": str(args.config),
        "set": common,
        "reference_seconds": round(seconds["reference"], 1),
        "variants": figures,
    }
    keep(out.name, result)
    print(
        f"reference: {seconds['reference']:.0f} s\n\n| variant | s | identical | within tolerance | differs | "
        "missing |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    for name, entry in figures.items():
        print(f"\n{name}: differs {entry['differing_files']}")
        for key, delta in entry["largest_deviations"].items():
            print(f"    {key}: {delta:.6g}")


if __name__ == "__main__":
    main()
