"""Icon quality per optimisation step: mean icon fidelity and class agreement against steps and
attempts, what stopping rules (render.stop) would spend and reach, and what the chosen rule does
when it runs, for one layer of a run.

The workflow makes the layer's cells at one grid (benchmarks/render_quality.py). A seeded sample of
them is rendered once at the paper's budget (1,024 steps × 4 attempts) under the layer's configured
render settings, keeping every step's cosine to the objective's direction and the icons every
`--every` steps (optvis.render.Trace). From that one render:
- the quality after s steps with the best of k attempts, for s = 64…1,024 and k = 1…4 (attempt k
  has the same seed whatever the number of attempts);
- every rule of a grid of stopping rules, applied to the recorded cosines by the renderer's own
  StopTracker, at the config's budget, the default config's (config.yaml) and the paper's (the
  render's first steps and attempts): the icons it would keep and the steps it would spend.
The rules given with --check then run for real at each budget, beside the budget run to the end
(below the paper's budget on --check-cells cells, a second seeded sample).

  python -m benchmarks.quality_per_step --config config.yaml --layer conv4
  python -m benchmarks.quality_per_step --images ../path/to/cifar10-images          # the ResNet-32, layer3

Figures are printed as Markdown tables and kept in docs/measurements/quality_per_step-<model>-<layer>.json.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from activation_atlas.algorithms.binning import agreement
from activation_atlas.optvis.objectives import objective_directions
from activation_atlas.optvis.render import Attempts, Trace, classify_icons, judge_icons
from activation_atlas.optvis.stopping import StopRule, StopTracker
from benchmarks import keep
from benchmarks.render_quality import layer_parser, prepare_layer, sample_cells

REPO = Path(__file__).resolve().parents[1]

PAPER_BUDGET = (1024, 4)  # steps × attempts of the original's icons
STEP_COUNTS = (64, 128, 256, 512, 1024)
# The grid of rules simulated on the trace (windows must be multiples of --every).
WINDOWS = (16, 32, 64)
MIN_GAINS = (0.0, 0.001, 0.002, 0.005, 0.0075, 0.01)
PRUNES = ((None, 0.0), (32, 0.0), (32, 0.01), (32, 0.03), (64, 0.0), (64, 0.01), (64, 0.03), (128, 0.01), (128, 0.03))


def rule_name(stop: dict | None) -> str:
    if stop is None:
        return "none"
    name = f"gain {stop['min_gain']} / {stop['window']}"
    return name + (f", drop {stop['prune_margin']} at {stop['prune_at']}" if stop.get("prune_at") else "")


def traced_render(bench, section: dict, chosen: np.ndarray, every: int, log):
    """The traced render at the paper's budget, and its seconds; kept in logs/benchmarks and reused by
    a later run with the same model, layer, cells and settings (to run more rules for real)."""
    key = json.dumps(
        {
            "model": bench.config["model"],
            "layer": bench.layer,
            "grid": bench.grid_size,
            "cells": chosen.tolist(),
            "every": every,
            "render": section,
        },
        sort_keys=True,
    )
    path = REPO / "logs" / "benchmarks" / f"quality_per_step-{bench.config['model']['name']}-{bench.layer}-trace.npz"
    if path.exists():
        with np.load(path) as kept:
            if str(kept["key"]) == key:
                log(f"the traced render of {path}")
                trace = Trace(every, kept["cosines"], kept["snapshots"])
                attempts = Attempts(
                    *(kept[name] for name in ("images", "objective", "fidelity", "steps", "dropped")), trace
                )
                return attempts, float(kept["seconds"])
    start = time.perf_counter()
    attempts = bench.render(section, chosen, trace_every=every)
    seconds = time.perf_counter() - start
    log(f"{len(chosen)} icons, {section['steps']} steps × {section['attempts']} attempts, traced: {seconds:.0f} s")
    np.savez(
        path,
        key=key,
        seconds=seconds,
        images=attempts.images,
        objective=attempts.objective,
        fidelity=attempts.fidelity,
        steps=attempts.steps,
        dropped=attempts.dropped,
        cosines=attempts.trace.cosines,
        snapshots=attempts.trace.snapshots,
    )
    return attempts, seconds


def snapshot_scores(bench, section: dict, chosen: np.ndarray, snapshots: np.ndarray, batch: int = 256):
    """Objective, fidelity and the model's class of every snapshot (M, A, K, n, n, 3), as the renderer
    judges a finished icon."""
    m, a, k = snapshots.shape[:3]
    flat = snapshots.reshape(m * a * k, *snapshots.shape[3:])
    targets = torch.from_numpy(np.repeat(bench.cells.mean[chosen].astype(np.float32), a * k, axis=0))
    whitening = torch.from_numpy(bench.whitening) if section["whiten"] else None
    objective, fid = [], []
    for first in range(0, len(flat), batch):
        images = torch.from_numpy(flat[first : first + batch]).permute(0, 3, 1, 2).float() / 255.0
        part = targets[first : first + batch]
        scores = judge_icons(
            bench.model,
            bench.module,
            images,
            part,
            objective_directions(part, whitening),
            section["cossim_pow"],
            bench.grid,
        )
        objective.append(scores[0])
        fid.append(scores[1])
    classes = classify_icons(bench.model, flat, bench.input_size, batch)
    shape = (m, a, k)
    return torch.cat(objective).numpy().reshape(shape), torch.cat(fid).numpy().reshape(shape), classes.reshape(shape)


def kept_scores(bench, chosen, objective, fid, classes, dropped=None) -> dict:
    """Scores of each icon's best attempt; objective, fid, classes (M, A) at each attempt's end."""
    objective = np.where(dropped, -np.inf, objective) if dropped is not None else objective
    best = objective.argmax(axis=1)
    rows = np.arange(len(best))
    return {
        "mean_icon_fidelity": round(float(fid[rows, best].mean()), 4),
        "class_agreement": agreement(classes[rows, best], bench.cell_class[chosen], np.ones(len(best), bool)),
    }


def simulate_rule(stop: dict, cosines: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps each attempt (M, A) would run and which would be dropped, by the renderer's own
    StopTracker fed the recorded cosines (M, A, steps)."""
    m, a, steps = cosines.shape
    tracker = StopTracker(StopRule.from_section(stop), torch.arange(m).repeat_interleave(a), steps)
    flat = torch.from_numpy(cosines.reshape(m * a, steps))
    held = [torch.zeros(m * a, 1)]
    for step in range(steps):
        if not len(tracker.rows):
            break
        tracker.record(step, flat[tracker.rows, step], held)
    return tracker.steps_run.numpy().reshape(m, a), tracker.dropped.numpy().reshape(m, a)


def rule_grid() -> list[dict]:
    return [
        {"window": w, "min_gain": g, "prune_at": p, "prune_margin": margin}
        for w, g, (p, margin) in itertools.product(WINDOWS, MIN_GAINS, PRUNES)
    ]


def simulated_rules(bench, chosen, trace, scores, budget: tuple[int, int], rules: list[dict]) -> list[dict]:
    """Every rule applied to the trace's first `steps` steps of its first `attempts` attempts."""
    steps, attempts = budget
    objective, fid, classes = (s[:, :attempts] for s in scores)
    cosines = trace.cosines[:, :attempts, :steps]
    rows = []
    for stop in [None, *rules]:
        if stop is None:
            ran, dropped = np.full(cosines.shape[:2], steps), np.zeros(cosines.shape[:2], bool)
        elif stop["window"] >= steps or (stop["prune_at"] or 0) >= steps:
            continue
        else:
            ran, dropped = simulate_rule(stop, cosines, trace.every)
        at = ran // trace.every - 1  # the snapshot of each attempt's last step
        pick = lambda s: np.take_along_axis(s, at[..., None], axis=2)[..., 0]  # noqa: E731, B023 (used in this iteration)
        row = {
            "budget": f"{steps} × {attempts}",
            "rule": rule_name(stop),
            "stop": stop,
            "icon_steps": round(float(ran.sum(axis=1).mean()), 1),
            "fraction_of_budget": round(float(ran.sum(axis=1).mean()) / (steps * attempts), 3),
            **kept_scores(bench, chosen, pick(objective), pick(fid), pick(classes), dropped),
        }
        rows.append(row)
    return rows


def real_run(bench, chosen, budget: tuple[int, int], stop: dict | None, log, icons=None, seconds=None) -> dict:
    """A rule run by the renderer at a budget on the chosen cells (or the icons of such a run, given)."""
    steps, attempts = budget
    if icons is None:
        section = {
            **bench.configured,
            "steps": steps,
            "attempts": attempts,
            "stop": stop,
            "batch_size": max(bench.configured["batch_size"] // attempts, 1) * attempts,
        }
        start = time.perf_counter()
        icons = bench.render(section, chosen)
        seconds = time.perf_counter() - start
    row = {
        "budget": f"{steps} × {attempts}",
        "rule": rule_name(stop),
        "stop": stop,
        "cells": len(chosen),
        "icon_steps": round(float(icons.steps.mean()), 1),
        "fraction_of_budget": round(float(icons.steps.mean()) / (steps * attempts), 3),
        "seconds": round(seconds, 1),
        **bench.scores(icons, chosen),
    }
    log(json.dumps(row))
    return row


def per_step_table(bench, chosen, scores, every: int, attempts: int) -> list[dict]:
    objective, fid, classes = scores
    rows = []
    for steps, k in itertools.product(STEP_COUNTS, range(1, attempts + 1)):
        at = steps // every - 1
        rows.append(
            {
                "steps": steps,
                "attempts": k,
                "icon_steps": steps * k,
                **kept_scores(bench, chosen, objective[:, :k, at], fid[:, :k, at], classes[:, :k, at]),
            }
        )
    return rows


def markdown(per_step: list[dict], frontier: list[dict], real: list[dict], attempts: int) -> str:
    lines = [
        "| steps | " + " | ".join(f"best of {k}" for k in range(1, attempts + 1)) + " |",
        "|---|" + "---|" * attempts,
    ]
    for steps in STEP_COUNTS:
        cells = [
            next(r for r in per_step if r["steps"] == steps and r["attempts"] == k) for k in range(1, attempts + 1)
        ]
        lines.append(
            f"| {steps} | "
            + " | ".join(f"{r['mean_icon_fidelity']:.3f} ({r['class_agreement']:.2f})" for r in cells)
            + " |"
        )
    lines += [
        "",
        "| budget | stopping rule | icon-steps per icon | of the budget | mean fidelity | class agreement |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['budget']} | {r['rule']} | {r['icon_steps']} | {r['fraction_of_budget']:.0%} | "
        f"{r['mean_icon_fidelity']:.3f} | {r['class_agreement']:.2f} |"
        for r in frontier
    ]
    lines += ["", "Run by the renderer:", "", lines[len(STEP_COUNTS) + 3], lines[len(STEP_COUNTS) + 4]]
    lines += [
        f"| {r['budget']} | {r['rule']} | {r['icon_steps']} | {r['fraction_of_budget']:.0%} | "
        f"{r['mean_icon_fidelity']:.3f} | {r['class_agreement']:.2f} |"
        for r in real
    ]
    return "\n".join(lines)


def cheapest_within(rows: list[dict], tolerance: float) -> list[dict]:
    """The unstopped row, and the cheapest rules whose fidelity is within `tolerance` of it."""
    base = next(r for r in rows if r["rule"] == "none")
    good = [r for r in rows if r["mean_icon_fidelity"] >= base["mean_icon_fidelity"] - tolerance and r is not base]
    return [base, *sorted(good, key=lambda r: r["icon_steps"])[:5]]


def main() -> None:
    parser = layer_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=16, help="a seeded sample of this many cells (0: all)")
    parser.add_argument(
        "--check-cells",
        type=int,
        default=16,
        help="cells the rules run on for real at budgets below the paper's (0: all)",
    )
    parser.add_argument("--every", type=int, default=16, help="steps between the trace's snapshots")
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        type=json.loads,
        help='a rule to run for real, as JSON: {"window": 32, "min_gain": 0.002}; repeatable',
    )
    args = parser.parse_args()
    log = lambda line: print(line, flush=True)  # noqa: E731
    bench = prepare_layer(args.config, args.images, args.layer, args.grid, args.cores, run="quality-per-step")
    chosen = sample_cells(len(bench.cells.count), args.cells or None, bench.config["seed"])
    steps, attempts = PAPER_BUDGET
    section = {**bench.configured, "steps": steps, "attempts": attempts, "stop": None}
    traced, traced_seconds = traced_render(bench, section, chosen, args.every, log)
    scores = snapshot_scores(bench, section, chosen, traced.trace.snapshots)
    per_step = per_step_table(bench, chosen, scores, args.every, attempts)
    default = yaml.safe_load((REPO / "config.yaml").read_text())["render"]
    budgets = sorted(
        {
            (bench.configured["steps"], bench.configured["attempts"]),
            (default["steps"], default["attempts"]),
            PAPER_BUDGET,
        }
    )
    simulated = {
        f"{s} × {a}": simulated_rules(bench, chosen, traced.trace, scores, (s, a), rule_grid()) for s, a in budgets
    }
    frontier = [row for rows in simulated.values() for row in cheapest_within(rows, 0.005)]
    # The traced render is the paper's budget run to the end; smaller budgets may run on more cells.
    checked = sample_cells(len(bench.cells.count), args.check_cells or None, bench.config["seed"] + 1)
    real = [
        real_run(bench, chosen, budget, stop, log, traced.best(), traced_seconds)
        if (budget, stop) == (PAPER_BUDGET, None)
        else real_run(bench, chosen if budget == PAPER_BUDGET else checked, budget, stop, log)
        for budget in budgets
        for stop in [None, *args.check]
    ]
    report = {
        "run": bench.config["run"],
        "model": bench.config["model"]["name"],
        "layer": args.layer,
        "grid": args.grid,
        "cells": len(chosen),
        "of_cells": int(len(bench.cells.count)),
        "render": bench.configured,
        "threads": bench.config["threads"],
        "per_step": per_step,
        "simulated": simulated,
        "real": real,
    }
    keep(f"quality_per_step-{bench.config['model']['name']}-{args.layer}", report)
    print(
        f"\n{bench.config['model']['name']} {args.layer}, grid {args.grid}: {len(chosen)} of "
        f"{len(bench.cells.count)} cells; mean icon fidelity (class agreement)\n"
    )
    print(markdown(per_step, frontier, real, attempts))


if __name__ == "__main__":
    main()
