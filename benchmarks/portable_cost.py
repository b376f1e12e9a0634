"""What portable mode costs: the config run from scratch with `portable` false and true, alternately,
several rounds; the median wall time of each, their ratio, and per rule the median of the seconds its
jobs took (Snakemake's benchmark files).

  python benchmarks/portable_cost.py [--config config/ci.yaml] [--rounds 3]

Prints a Markdown table and writes logs/benchmarks/portable_cost.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from reproducibility import REPO, run_workflow

MODES = {"native": "False", "portable": "True"}


def seconds_per_rule(workdir: Path) -> dict:
    """Summed wall seconds of each stage's jobs, from logs/**/*.benchmark.tsv: a stage is the folder below
    logs/<run>/ (extract, layout, render, ...) or the file's name (train, generate, numerics, ...)."""
    totals = defaultdict(float)
    for path in workdir.glob("logs/**/*.benchmark.tsv"):
        parts = path.relative_to(workdir / "logs").parts
        name = path.name.removesuffix(".benchmark.tsv")
        stage = name if parts[0] in ("model", "data") or len(parts) == 2 else parts[1]
        with open(path) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        totals[stage] += float(rows[-1]["s"])
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "ci.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "portable_cost")
    args = parser.parse_args()
    wall, stages = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for round_ in range(args.rounds):
        for mode, value in MODES.items():
            workdir = args.out / f"{mode}-{round_}"
            wall[mode].append(run_workflow(args.config, workdir, {}, {"portable": value}, args.cores))
            for stage, seconds in seconds_per_rule(workdir).items():
                stages[stage][mode].append(seconds)
            print(f"round {round_ + 1}, {mode}: {wall[mode][-1]:.0f} s", file=sys.stderr, flush=True)
    median = {mode: statistics.median(wall[mode]) for mode in MODES}
    per_stage = {stage: {mode: round(statistics.median(values[mode]), 1) for mode in MODES}
                 for stage, values in sorted(stages.items())}
    result = {"config": str(args.config), "rounds": args.rounds, "wall_seconds": wall,
              "median_seconds": median, "ratio": round(median["portable"] / median["native"], 3),
              "median_seconds_per_stage": per_stage}
    args.out.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| | native | portable | ratio |\n|---|---|---|---|\n"
          f"| whole run (median of {args.rounds}) | {median['native']:.0f} s | {median['portable']:.0f} s | "
          f"{result['ratio']:.2f} |")
    for stage, seconds in per_stage.items():
        ratio = seconds["portable"] / seconds["native"] if seconds["native"] else float("nan")
        print(f"| {stage} | {seconds['native']} s | {seconds['portable']} s | {ratio:.2f} |")


if __name__ == "__main__":
    main()
