"""How wide verify's margin around the seeds' spread must be: leave one seed's run out, judge it by the
spread of the others as verify judges a run made with another seed, and count its numeric figures that
fall outside, for several margins (in widths of the spread, on each side).

    python -m tools.spread_margin results/demo/MANIFEST.json results/demo-seed1/MANIFEST.json ...

activation_atlas.checking.verify.SPREAD_MARGIN is the smallest margin at which no run left out has a
figure outside. Names (of the model, the dataset) are not judged here: make_reference's runs carry
their seed in them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from activation_atlas.checking.spread import figure_spread, is_number
from activation_atlas.checking.verify import compare_figures

MARGINS = (0.5, 1.0, 1.5, 2.0)


def figures_outside(left_out: dict, others: list[dict], widths: float) -> list[str]:
    """The numeric figures of the run left out beyond the others' spread and its margin, as file:figure."""
    spread, reference = figure_spread(others), others[0]["files"]
    outside = []
    for path, entry in reference.items():
        mine = left_out["files"].get(path)
        if mine is None or mine.get("sha256") == entry.get("sha256") or "figures" not in entry:
            continue
        _, differences = compare_figures(
            entry["kind"], entry["figures"], mine["figures"], spread.get(path), same_seed=False, widths=widths
        )
        outside += [f"{path}:{d.name}" for d in differences if not d.within and is_number(d.actual)]
    return outside


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.spread_margin", description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", type=Path, nargs="+", help="the MANIFEST.json of each seed's run (≥ 3)")
    args = parser.parse_args(argv)
    if len(args.manifests) < 3:
        parser.error("leaving one out needs at least 3 runs")
    runs = [json.loads(path.read_text()) for path in args.manifests]
    for widths in MARGINS:
        counts = []
        for k, left_out in enumerate(runs):
            outside = figures_outside(left_out, runs[:k] + runs[k + 1 :], widths)
            counts.append(len(outside))
            for figure in outside:
                print(f"  margin {widths}: seed {left_out.get('seed')} outside at {figure}")
        print(f"margin {widths} widths: figures outside per run left out {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
