"""Performance and quality measurements of the workflow's stages (not part of the test suite). Each
module runs from the repository root as `python -m benchmarks.<name>` and keeps its figures in
docs/measurements/<name>.json, from which `python -m tools.docs_tables` makes the tables in docs/."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASUREMENTS = REPO / "docs" / "measurements"


def keep(name: str, figures) -> Path:
    """Writes a benchmark's figures to docs/measurements/<name>.json together with where and from what
    they were measured (the command, the commit, the CPU, the package versions), and returns the path."""
    from activation_atlas.workflow.provenance import cpu, git_state, package_versions

    command = " ".join(["python -m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]])
    record = {"command": command,
              "source": git_state(REPO), "cpu": cpu(), "packages": package_versions(), "figures": figures}
    MEASUREMENTS.mkdir(parents=True, exist_ok=True)
    path = MEASUREMENTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"kept in {path.relative_to(REPO)}")
    return path
