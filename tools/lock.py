"""The dependency lock and the conda environments that must agree with it.

requirements.txt is the hand-edited list of direct dependencies; requirements.lock is compiled from it
(every package, exact versions, the hashes of each release's files), and `make install` installs from
it with --require-hashes. Each conda environment in envs/ pins its stage's packages and everything
they depend on, at the lock's versions.

    python -m tools.lock compile    # requirements.txt → requirements.lock (pip-tools, over the network)
    python -m tools.lock envs       # envs/*.yaml: each pin and its dependencies at the lock's versions
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
ENV_PIN = re.compile(r"^(\s+- )([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def pins(text: str) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines of a requirements file."""
    return {canonicalize_name(m.group(1)): m.group(2) for line in text.splitlines() if (m := PIN.match(line))}


def dependencies(name: str) -> set[str]:
    """The packages an installed distribution needs on this platform (extras left out)."""
    found = set()
    for spec in importlib.metadata.requires(name) or []:
        requirement = Requirement(spec)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.add(canonicalize_name(requirement.name))
    return found


def closure(roots) -> set[str]:
    """The roots and everything they depend on, as installed here."""
    seen, todo = set(), [canonicalize_name(root) for root in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(dependencies(name) - seen)
    return seen


def env_pins(env_file: Path) -> dict[str, str]:
    return {
        canonicalize_name(m.group(2)): m.group(3)
        for line in env_file.read_text().splitlines()
        if (m := ENV_PIN.match(line))
    }


def write_env(env_file: Path, locked: dict[str, str]) -> None:
    """The env's pip list made the closure of its pins, at the lock's versions; the lines before it kept."""
    lines = env_file.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if ENV_PIN.match(line))
    indent = ENV_PIN.match(lines[first]).group(1)
    wanted = closure(env_pins(env_file))
    pip = [f"{indent}{name}=={locked[name]}" for name in sorted(wanted)]
    rest = [line for line in lines[first:] if not ENV_PIN.match(line)]
    env_file.write_text("\n".join(lines[:first] + pip + rest) + "\n")


def compile_lock() -> int:
    return subprocess.call(
        [
            "pip-compile",
            "--generate-hashes",
            "--allow-unsafe",
            "--strip-extras",
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--quiet",
            "-o",
            str(LOCK),
            str(REPO / "requirements.txt"),
        ]
    )


def main(argv=None) -> int:
    command = (argv or sys.argv[1:] or ["envs"])[0]
    if command == "compile":
        return compile_lock()
    if command == "envs":
        locked = pins(LOCK.read_text())
        for env_file in sorted((REPO / "envs").glob("*.yaml")):
            write_env(env_file, locked)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
