"""What portable mode costs: the config run from scratch with `portable` false and true, alternately,
several rounds; the median wall time of each, their ratio, and per rule the median of the seconds its
jobs took (Snakemake's benchmark files). With --kernels, instead: the default run's heaviest torch
work (a training step of its demo CNN, batch 64 at 64 px, forward and backward), timed in processes
with native and with portable kernels, alternately.

  python -m benchmarks.portable_cost [--config config/ci.yaml] [--rounds 3] [--kernels]

Prints a Markdown table and keeps its figures in docs/measurements/portable_cost.json (--kernels:
portable_kernels.json); the runs themselves stay under logs/benchmarks/portable_cost/.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from activation_atlas.workflow.provenance import PORTABLE_ENVIRONMENT
from benchmarks import keep
from benchmarks.reproducibility import REPO, run_workflow

MODES = {"native": "False", "portable": "True"}
# Seconds per training step of the default run's demo CNN, printed by a process of its own (the kernel
# caps are read when torch loads).
TRAINING_STEPS = """
import time, torch
from activation_atlas.models.demo_cnn import DemoCNN
from activation_atlas.runtime import configure_torch
configure_torch(2, 0, lambda line: None)   # as the workflow's jobs: in portable mode no oneDNN
model = DemoCNN((32, 64, 128, 128))
optimiser = torch.optim.Adam(model.parameters())
x, y = torch.rand(64, 3, 64, 64), torch.randint(0, 10, (64,))
def step():
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimiser.step()
for _ in range(3):
    step()
start = time.perf_counter()
for _ in range(20):
    step()
print((time.perf_counter() - start) / 20)
"""


def seconds_per_training_step(env: dict) -> float:
    result = subprocess.run(
        [sys.executable, "-c", TRAINING_STEPS],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return float(result.stdout.split()[-1])


def kernels(rounds: int) -> None:
    """Native and portable kernels side by side on the default run's training step, alternately."""
    seconds = defaultdict(list)
    for round_ in range(rounds):
        for mode, env in (("native", {}), ("portable", PORTABLE_ENVIRONMENT)):
            seconds[mode].append(seconds_per_training_step(env))
            print(f"round {round_ + 1}, {mode}: {seconds[mode][-1]:.3f} s a step", file=sys.stderr, flush=True)
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    result = {
        "rounds": rounds,
        "seconds_per_step": seconds,
        "median": median,
        "ratio": round(median["portable"] / median["native"], 3),
    }
    keep("portable_kernels", result)
    print(
        f"| demo CNN training step (median of {rounds}) | {median['native']:.3f} s | "
        f"{median['portable']:.3f} s | {result['ratio']:.2f} |"
    )


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
    parser.add_argument("--kernels", action="store_true")
    args = parser.parse_args()
    if args.kernels:
        kernels(args.rounds)
        return
    wall, stages = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for round_ in range(args.rounds):
        for mode, value in MODES.items():
            workdir = args.out / f"{mode}-{round_}"
            wall[mode].append(run_workflow(args.config, workdir, {}, {"portable": value}, args.cores))
            for stage, seconds in seconds_per_rule(workdir).items():
                stages[stage][mode].append(seconds)
            print(f"round {round_ + 1}, {mode}: {wall[mode][-1]:.0f} s", file=sys.stderr, flush=True)
    median = {mode: statistics.median(wall[mode]) for mode in MODES}
    per_stage = {
        stage: {mode: round(statistics.median(values[mode]), 1) for mode in MODES}
        for stage, values in sorted(stages.items())
    }
    result = {
        "config": str(args.config),
        "rounds": args.rounds,
        "wall_seconds": wall,
        "median_seconds": median,
        "ratio": round(median["portable"] / median["native"], 3),
        "median_seconds_per_stage": per_stage,
    }
    keep("portable_cost", result)
    print(
        f"| | native | portable | ratio |\n|---|---|---|---|\n"
        f"| whole run (median of {args.rounds}) | {median['native']:.0f} s | {median['portable']:.0f} s | "
        f"{result['ratio']:.2f} |"
    )
    for stage, seconds in per_stage.items():
        ratio = seconds["portable"] / seconds["native"] if seconds["native"] else float("nan")
        print(f"| {stage} | {seconds['native']} s | {seconds['portable']} s | {ratio:.2f} |")


if __name__ == "__main__":
    main()
