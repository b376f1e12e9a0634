"""Performance and quality measurements of the workflow's stages (not part of the test suite). Each
module runs from the repository root as `python -m benchmarks.<name>` and keeps its figures in
docs/measurements/<name>.json, from which `python -m tools.docs_tables` makes the tables in docs/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASUREMENTS = REPO / "docs" / "measurements"


def shown_argument(argument: str) -> str:
    """A command-line argument as the record shows it: a path inside the repository relative to it, one
    outside by its last part (where the data lay on the measuring machine says nothing elsewhere)."""
    path = Path(argument)
    if not path.is_absolute():
        return argument
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else f".../{path.name}"


def source() -> dict:
    """The commit measured, and whether files outside docs/ (the kept measurements and the tables made
    from them) differed from it."""

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "uncommitted_changes": None}
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs")
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(changed.stdout.strip())}


def keep(name: str, figures) -> Path:
    """Writes a benchmark's figures to docs/measurements/<name>.json together with where and from what
    they were measured (the command, the commit, the CPU, the package versions), and returns the path."""
    from activation_atlas.workflow.provenance import cpu, package_versions

    command = " ".join(["python -m", f"benchmarks.{Path(sys.argv[0]).stem}", *map(shown_argument, sys.argv[1:])])
    record = {"command": command, "source": source(), "cpu": cpu(), "packages": package_versions(), "figures": figures}
    MEASUREMENTS.mkdir(parents=True, exist_ok=True)
    path = MEASUREMENTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"kept in {path.relative_to(REPO)}")
    return path
