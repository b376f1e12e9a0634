"""Regenerates every image under docs/ from the runs it shows (`make docs`, after the runs): the files
of results/<run>/ that docs/sources.yaml names, copied unchanged, and the viewer screenshots.

    python -m tools.docs_images [--results results] [--docs docs]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

from tools.screenshot_viewer import screenshot

DOCS = Path(__file__).resolve().parents[1] / "docs"


def load_sources(path: Path = DOCS / "sources.yaml") -> dict:
    return yaml.safe_load(path.read_text())


def build(results: Path, docs: Path, sources: dict) -> None:
    for name, source in sources["images"].items():
        run_dir = results / source["run"]
        if "file" in source:
            origin = run_dir / source["file"]
            if not origin.is_file():
                raise SystemExit(f"{origin} is missing: run {sources['runs'][source['run']]} first")
            shutil.copyfile(origin, docs / name)
        else:
            origin = f"{run_dir / 'viewer.html'}{source['viewer']}"
            screenshot(run_dir, source["viewer"], docs / name)
        print(f"{docs / name} ← {origin}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args()
    build(args.results, args.docs, load_sources())


if __name__ == "__main__":
    main()
