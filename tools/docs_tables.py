"""Tables of measured figures in docs/*.md, made from the JSON that holds the figures rather than
copied by hand: each sits between `<!-- table: NAME -->` and `<!-- end table -->`, and NAME says
where its figures come from. tests/test_docs.py checks that every such table is what this makes.

    python -m tools.docs_tables            # rewrite the tables of docs/*.md
    python -m tools.docs_tables --check    # exit 1, naming the page and table, where one differs

The run tables read the reference manifests (reference/<run>/MANIFEST.json: the figures of the runs
`make docs` makes, which `make verify` checks a reviewer's run against); the benchmark tables read
the JSON the benchmarks write, kept under docs/measurements/<benchmark>/ (one file a run of it).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from activation_atlas.checking.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MEASUREMENTS = DOCS / "measurements"
TABLE = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def figures(run: str, file: str) -> dict:
    return read_manifest(REPO / "reference" / run / "MANIFEST.json")["files"][file]["figures"]


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def atlas_rows(run: str, layers: dict[str, str]) -> list[list]:
    """Per layer (name shown → layer) and grid: cells, mean and lowest icon fidelity, class agreement."""
    rows = []
    for shown, layer in layers.items():
        grid_figures = figures(run, f"atlas/{layer}/metrics.json")
        for grid in sorted({int(key.split(".")[1]) for key in grid_figures if key.startswith("grids.")}):
            g = f"grids.{grid}."
            rows.append([f"`{shown}`", grid, grid_figures[g + "cells_kept"], f"{grid_figures[g + 'mean_icon_fidelity']:.3f}",
                         f"{grid_figures[g + 'min_icon_fidelity']:.3f}", f"{grid_figures[g + 'class_agreement']:.2f}"])
    return rows


def demo_vit_atlases() -> str:
    layers = {f"encoder_layer_{k}": f"encoder.layers.encoder_layer_{k}" for k in (2, 3)}
    return markdown(["layer", "grid", "cells", "mean icon fidelity", "lowest", "class agreement"],
                    atlas_rows("demo-vit", layers))


def aligned_demo_members() -> str:
    member_figures = figures("aligned-demo", "metrics.json")
    members = [member_figures[key] for key in sorted(k for k in member_figures if k.startswith("members."))]
    rows = []
    for member in members:
        grids = sorted({int(key.split(".")[2]) for key in member_figures if key.startswith(f"grids.{member}.")})
        for grid in grids:
            g = f"grids.{member}.{grid}."
            rows.append([member, grid, member_figures[g + "cells"], f"{member_figures[g + 'mean_icon_fidelity']:.3f}",
                         f"{member_figures[g + 'min_icon_fidelity']:.3f}", f"{member_figures[g + 'class_agreement']:.2f}"])
    return markdown(["member", "grid", "cells", "mean icon fidelity", "lowest", "class agreement"], rows)


def benchmark_runs(name: str) -> list[dict]:
    """The runs of benchmarks/<name>.py whose JSON is kept, in the order of their file names."""
    return [json.loads(path.read_text()) for path in sorted((MEASUREMENTS / name).glob("*.json"))]


def batching_cell(rendering: dict) -> str:
    """Batched over one-at-a-time icons/s at each batch size, the best in bold."""
    ratios = rendering["ratio_by_batch_size"]
    return " / ".join(f"**{ratio:.1f}×**" if int(b) == int(rendering["best_batch_size"]) else f"{ratio:.1f}×"
                      for b, ratio in ratios.items())


def run_benchmarks() -> str:
    """make benchmark (benchmarks/run_benchmarks.py): a column per kept run."""
    runs = benchmark_runs("run_benchmarks")
    header = ["measurement", *(f"run {k + 1}" for k in range(len(runs)))]
    e = runs[0]["extraction"]
    rows = [[f"(a) extraction (hooks, position sampling, HDF5 writes) vs a bare forward pass, same model, batch "
             f"{e['batch_size']}, same {e['images']} in-memory images",
             *(f"{r['extraction']['extract_images_per_s']:.0f} vs {r['extraction']['bare_images_per_s']:.0f} images/s: "
               f"**{r['extraction']['ratio_median']:.2f}×**" for r in runs)]]
    for k, rendering in enumerate(runs[0]["rendering"]):
        sizes = " / ".join(str(b) for b in rendering["ratio_by_batch_size"])
        what = (f"(b) batched vs one-at-a-time rendering, demo {rendering['layer']} ({rendering['icon_size']} px), "
                f"B = {sizes}")
        rows.append([what, *(batching_cell(r["rendering"][k]) for r in runs)])
    if all("rendering_inceptionv1" in r for r in runs):
        sizes = " / ".join(str(b) for b in runs[0]["rendering_inceptionv1"]["ratio_by_batch_size"])
        rows.append([f"(b) … InceptionV1 mixed4c (80 px, the paper's setting), random weights, B = {sizes}",
                     *(batching_cell(r["rendering_inceptionv1"]) for r in runs)])
    rows.append(["(c) rule wall times of the default run, summed over jobs (s)",
                 *(", ".join(f"{rule} {seconds:.0f}" for rule, seconds in r["rule_seconds"].items()) for r in runs)])
    return markdown(header, rows)


TABLES = {"demo-vit-atlases": demo_vit_atlases, "aligned-demo-members": aligned_demo_members,
          "run-benchmarks": run_benchmarks}


def rendered(page: str) -> str:
    """The page with every table made again; an unknown table name is an error."""
    def table(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r}; tools/docs_tables.py makes: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)
    return TABLE.sub(table, page)


def stale_tables(docs: Path = DOCS) -> list[str]:
    """'page: table' for every table whose text is not what its figures make."""
    stale = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text()
        for match in TABLE.finditer(text):
            if rendered(match.group(0)) != match.group(0):
                stale.append(f"{path.name}: {match.group('name')}")
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which tables differ from their figures")
    args = parser.parse_args()
    if args.check:
        stale = stale_tables()
        for entry in stale:
            print(f"stale table: {entry} (python -m tools.docs_tables)", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        if TABLE.search(text):
            path.write_text(rendered(text))


if __name__ == "__main__":
    main()
