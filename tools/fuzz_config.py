"""Mutations of config/ci.yaml (Hypothesis strategies), and what the workflow makes of each: rejected
before any job with one line that names a key, or accepted with a dry run that succeeds and writes
nowhere outside its own folders. Anything else is a failure: a traceback, a rejection that names no
key, a failing dry run, an output path that leaves the working directory.

The test suite draws a few hundred of them (tests/test_config_fuzz.py), and its slow part runs a few
accepted ones for real: each run then succeeds or fails on one error line, without a traceback, and
changes no file but the outputs, logs and benchmarks of its jobs. Run as a script it draws as many as
asked, dry-runs every accepted one and counts the outcomes:

  python -m tools.fuzz_config [--mutations 1000] [--seed 0] [--report logs/fuzz_config.json]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import strategies as st

from activation_atlas.workflow.config_check import ConfigError, check_config, load_schema
from tools.runs import REPO, SCHEMA, copy_workflow, validated

BASE = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())


class Delete:
    """A mutation's value that removes the key."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = Delete()


def paths_of(value, prefix=()) -> list[tuple]:
    """Every key path in a config, sections and leaves, list items included."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        found += [(*prefix, index) for index in range(len(value))]
    return found


FILLED = validated(BASE)
PATHS = paths_of(FILLED)


def value_at(config, path):
    for key in path:
        config = config[key]
    return config


SECTIONS = [(), *(path for path in PATHS if isinstance(value_at(FILLED, path), dict))]
NAME_PATHS = [("run",), ("dataset", "name"), ("model", "name"), ("layers", 0), ("class_atlas", "layer")]
ODD_VALUES = [
    None,
    True,
    False,
    -1,
    0,
    1,
    3,
    2**70,
    10**9,
    0.5,
    -2.5,
    "",
    "x",
    "nonsense",
    "..",
    [],
    [1],
    [39, 20],
    {"a": 1},
]
ODD_NAMES = ["..", ".", "a/b", "/tmp", ".hidden", "", "ok_name", "conv9", "a" * 300, "x\ny"]
# Values that pass the schema but not what it cannot say (or do: the workflow must then run).
MEANINGFUL = [
    (("layers",), ["conv1", "conv9"]),
    (("layers",), ["conv4"]),
    (("layers",), ["conv2"]),
    (("class_atlas", "layer"), "conv3"),
    (("class_atlas", "classes"), ["nope"]),
    (("class_atlas", "classes"), [9]),
    (("class_atlas", "classes"), [10]),
    (("class_atlas", "comparisons"), [[1, 1]]),
    (("class_atlas", "comparisons"), [["red_checks_disc", "blue_dots_ring"]]),
    (("render", "per_layer", "conv4"), {"steps": 2}),
    (("layout", "per_layer", "conv2"), {"min_dist": 0.3}),
    (("render", "transforms", "scale_exponents"), [39, 20]),
    (("render", "transforms", "scale_exponents"), [5, 5]),
    (("extract", "shards"), 400),
    (("extract", "shards"), 401),
    (("grid", "min_count"), 799),
    (("grid", "min_count"), 800),
    (("grid", "sizes"), [1]),
    (("grid", "sizes"), [1000]),
    (("dataset", "subdir"), "train"),
    (("dataset", "kind"), "image_folder"),
    (("dataset", "kind"), "download"),
    (("dataset", "max_images"), 50),
    (("model", "kind"), "torchvision"),
    (("model", "kind"), "inceptionv1"),
    (("model", "architecture"), "resnet18"),
    (("model", "url"), "http://127.0.0.1:9/w.pt"),
    (("model", "checkpoint"), "no/such/file.pt"),
    (("model", "labels"), "no-such-labels.txt"),
    (("model", "labels"), ["a", "b"]),
    (("extract", "attribution"), False),
    (("seed",), 4294967295),
    (("seed",), 4294967296),
    (("threads",), 1025),
    (("portable",), True),
    (("device",), "cuda"),
    (("layout", "metric"), "euclidean"),
    (("layout", "backend"), "cuml"),
    (("render", "param"), "maco"),
    (("model", "layer_grids"), {"conv2": "tokens(prefix=1)"}),
    (("model", "layer_grids"), {"conv2": "tokens(1)"}),
    (("model", "kwargs"), {"image_size": 64}),
]

mutation = st.one_of(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(ODD_VALUES)),
    st.tuples(st.sampled_from(NAME_PATHS), st.sampled_from(ODD_NAMES)),
    st.sampled_from(MEANINGFUL),
    st.sampled_from(SECTIONS).map(lambda section: ((*section, "bogus_key"), 1)),
    st.tuples(st.sampled_from(PATHS), st.just(DELETE)),
)
mutations = st.lists(mutation, min_size=1, max_size=3)


def mutated(mutation_list) -> dict:
    """config/ci.yaml with each (path, value) written over it (DELETE removes the key)."""
    config = copy.deepcopy(BASE)
    for path, value in mutation_list:
        node = config
        for key in path[:-1]:
            if isinstance(node, list):
                if not isinstance(key, int) or key >= len(node):
                    break
                node = node[key]
            else:
                if not isinstance(node.get(key), (dict, list)):
                    node[key] = {}
                node = node[key]
        else:
            last = path[-1]
            if isinstance(node, list):
                if isinstance(last, int) and last < len(node):
                    if value is DELETE:
                        del node[last]
                    else:
                        node[last] = copy.deepcopy(value)
            elif value is DELETE:
                node.pop(last, None)
            else:
                node[last] = copy.deepcopy(value)
    return config


TOP_LEVEL = set(load_schema(SCHEMA)["properties"])
KEY_AT_START = re.compile(r"^(unknown key \S+|([a-z_]+)((\.[A-Za-z0-9_.-]+)|(\[\d+\]))*( |:|$))")


def names_a_key(message: str) -> bool:
    """The message begins with a config key (dotted, with list indices) or says which key is unknown."""
    match = KEY_AT_START.match(message)
    return bool(match) and (match.group(1).startswith("unknown key") or match.group(2) in TOP_LEVEL)


def checked(config: dict) -> tuple[str, str]:
    """('rejected', line) | ('accepted', '') | ('failure', what): the config check alone."""
    try:
        check_config(copy.deepcopy(config), SCHEMA)
    except ConfigError as error:
        line = str(error)
        if "\n" in line or not names_a_key(line):
            return "failure", f"rejection that names no key or is not one line: {line!r}"
        return "rejected", line
    except Exception as error:  # a traceback: the check itself broke
        return "failure", f"{type(error).__name__} in the config check: {error}"
    return "accepted", ""


OUTPUT_LINE = re.compile(r"^\s+output: (.+)$", re.M)


def dry_run(config: dict, workdir: Path) -> tuple[str, str]:
    """('accepted', '') when `snakemake -n` succeeds and every output lies inside workdir, else a failure."""
    (workdir / "fuzz.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "fuzz.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        lines = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith("Using workflow specific profile")
        ]
        if len(lines) == 1 and lines[0].startswith("config: "):
            return "failure", f"rejected only by the workflow, not by the check: {lines[0]}"
        return "failure", "dry run failed: " + " | ".join(lines[-5:])
    for outputs in OUTPUT_LINE.findall(result.stdout):
        for output in outputs.split(", "):
            resolved = (workdir / output).resolve()
            if workdir.resolve() not in resolved.parents:
                return "failure", f"an output outside the working directory: {output}"
    return "accepted", ""


DECLARED_LINE = re.compile(r"^\s+(?:output|log|benchmark): (.+)$", re.M)
ERROR_LINE = re.compile(r"^(?:.*\] )?error: .+$", re.M)


def file_digests(root: Path, leave_out: Path | None = None) -> dict[str, str]:
    """sha256 of every file under root by path, without leave_out and Snakemake's own records."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and ".snakemake" not in p.relative_to(root).parts
        and (leave_out is None or leave_out not in p.parents)
    }


def real_run(config: dict, workdir: Path, timeout: float = 1200) -> tuple[str, str]:
    """The README's command on config in workdir (a fresh copy of the workflow, with neighbours in its
    parent folder): ('ran', '') or ('failed on one line', the error) when it changed no file but the
    outputs, logs and benchmarks its jobs declared, and none outside workdir; else ('failure', what)."""
    (workdir / "fuzz.yaml").write_text(yaml.safe_dump(config))
    outside_before, inside_before = file_digests(workdir.parent, workdir), file_digests(workdir)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "fuzz.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    said = result.stdout + result.stderr
    if file_digests(workdir.parent, workdir) != outside_before:
        return "failure", "the run changed files outside its working directory"
    declared = [Path(path) for paths in DECLARED_LINE.findall(said) for path in paths.split(", ")]
    inside_after = file_digests(workdir)
    touched = [
        path for path in inside_after.keys() | inside_before.keys() if inside_after.get(path) != inside_before.get(path)
    ]
    undeclared = [path for path in touched if not any(Path(path) == d or d in Path(path).parents for d in declared)]
    if undeclared:
        return "failure", f"files changed that no job declared: {sorted(undeclared)[:5]}"
    if "Traceback" in said:
        return "failure", "a traceback: " + said[said.index("Traceback") :][:2000]
    if result.returncode == 0:
        return "ran", ""
    errors = ERROR_LINE.findall(said)
    if not errors:
        return "failure", "failed without an error line: " + said[-2000:]
    return "failed on one line", errors[0]


def outcome(mutation_list, workdir: Path | None) -> tuple[str, str]:
    """The check, then (workdir given) a dry run of an accepted config."""
    config = mutated(mutation_list)
    kind, detail = checked(config)
    if kind == "accepted" and workdir is not None:
        return dry_run(config, workdir)
    return kind, detail


def main() -> None:
    from hypothesis import HealthCheck, given, seed, settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=REPO / "logs" / "fuzz_config.json")
    args = parser.parse_args()
    counts, failures, outcomes = Counter(), [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = copy_workflow(Path(tmp) / "workflow")

        @seed(args.seed)
        @settings(
            max_examples=args.mutations,
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(mutations)
        def run(mutation_list):
            key = repr(mutation_list)
            if key not in outcomes:  # a mutation drawn again counts again, but runs once
                outcomes[key] = outcome(mutation_list, workdir)
                if outcomes[key][0] == "failure":
                    failures.append({"mutations": key, "failure": outcomes[key][1]})
            counts[outcomes[key][0]] += 1
            total = sum(counts.values())
            if total % 50 == 0:
                print(f"{total}: {dict(counts)}", file=sys.stderr, flush=True)

        run()
    report = {
        "seed": args.seed,
        "drawn": sum(counts.values()),
        "distinct": len(outcomes),
        "outcomes": dict(counts),
        "failures": failures,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for failure in failures[:20]:
        print(failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
