"""Make a run's reference: its manifest, and the spread of its figures over seeds.

    python -m tools.make_reference CONFIG [--seeds N]      (make reference CONFIG=... SEEDS=N)
    python -m tools.make_reference CONFIG --portable       (make reference CONFIG=... PORTABLE=1)

Runs CONFIG as it is (its own seed s: reference/<run>/MANIFEST.json is that run's manifest), then
with seeds s+1 … s+N−1, each as its own run with its own dataset and model names (<name>-seed<k>, so
no run overwrites another's resources), and writes reference/<run>/SPREAD.json: each figure's lowest
and highest value over the N runs (activation_atlas.checking.spread), by which verify judges runs with
other seeds and the figures fragile by construction.

With --portable, CONFIG is run once with portable kernels (`portable=True`) and its manifest written to
reference/<run>-portable/MANIFEST.json: the bytes every machine's portable run is to match; beside it
KERNELS.json, the bits of the operations it runs on this machine (tools/kernel_probe.py), against
which `make kernels` compares another machine's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from activation_atlas.checking.manifest import MANIFEST_NAME
from activation_atlas.checking.spread import SPREAD_NAME, write_spread
from tools.kernel_probe import KERNELS_NAME, run_probe

REPO = Path(__file__).resolve().parent.parent


def seeded_config(config: dict, seed: int) -> dict:
    """The config with another seed, as a run of its own whose dataset and model are its own too."""
    varied = json.loads(json.dumps(config))
    varied["seed"] = seed
    varied["run"] = f"{config['run']}-seed{seed}"
    for section in ("dataset", "model"):
        if "name" in varied.get(section, {}):
            varied[section]["name"] = f"{config[section]['name']}-seed{seed}"
    return varied


def run(config_file: Path, cores: str, *extra: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("snakemake")), "--configfile", str(config_file), "--cores", cores, *extra],
        cwd=REPO,
        check=True,
    )


def portable_reference(config_file: Path, name: str, cores: str) -> Path:
    """reference/<run>-portable/MANIFEST.json: the run's manifest, made with portable kernels, and
    KERNELS.json beside it: this machine's bits of the operations the run uses (tools.kernel_probe)."""
    run(config_file, cores, "--config", "portable=True")
    out = REPO / "reference" / f"{name}-portable" / MANIFEST_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "results" / name / MANIFEST_NAME, out)
    run_probe(out.with_name(KERNELS_NAME))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.make_reference", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds the spread is taken over (≥ 2)")
    parser.add_argument("--portable", action="store_true", help="one run with portable kernels, no spread")
    parser.add_argument("--cores", default="all")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    name, base = config["run"], config["seed"]
    if args.portable:
        print(portable_reference(args.config, name, args.cores))
        return 0
    if args.seeds < 2:
        parser.error(f"--seeds {args.seeds}: a spread needs at least 2 seeds")
    run(args.config, args.cores)
    manifests = [REPO / "results" / name / MANIFEST_NAME]
    for seed in range(base + 1, base + args.seeds):
        varied = seeded_config(config, seed)
        config_file = REPO / "logs" / "reference" / f"{varied['run']}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(yaml.safe_dump(varied, sort_keys=False))
        run(config_file, args.cores)
        manifests.append(REPO / "results" / varied["run"] / MANIFEST_NAME)
    out = REPO / "reference" / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifests[0], out / MANIFEST_NAME)
    write_spread(out / SPREAD_NAME, [json.loads(path.read_text()) for path in manifests])
    print(f"{out / MANIFEST_NAME} and {out / SPREAD_NAME} (seeds {base}–{base + args.seeds - 1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
