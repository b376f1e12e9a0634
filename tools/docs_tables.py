"""Tables of measured figures in docs/*.md, made from the JSON that holds the figures rather than
copied by hand: each sits between `<!-- table: NAME -->` and `<!-- end table -->`, and NAME says
where its figures come from. tests/test_docs.py checks that every such table is what this makes.

    python -m tools.docs_tables            # rewrite the tables of docs/*.md
    python -m tools.docs_tables --check    # exit 1, naming the page and table, where one differs

The run tables read the reference manifests (reference/<run>/MANIFEST.json: the figures of the runs
`make docs` makes, which `make verify` checks a reviewer's run against).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from activation_atlas.checking.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
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


TABLES = {"demo-vit-atlases": demo_vit_atlases, "aligned-demo-members": aligned_demo_members}


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
