"""Running the workflow from tests and tools: a fresh copy of its tracked files, Snakemake in it,
validated configs, digests of what a run made, and image files of the generated dataset's classes."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


def validated(config: dict) -> dict:
    """The config with schema defaults filled in and checked, as the Snakefile sees it."""
    from activation_atlas.workflow.config_check import check_config

    config = copy.deepcopy(config)
    check_config(config, SCHEMA)
    return config


def load_config(name: str) -> dict:
    return validated(yaml.safe_load((REPO / name).read_text()))


WORKFLOW_FILES = [
    "Snakefile",
    "config.yaml",
    "config",
    "rules",
    "scripts",
    "schemas",
    "envs",
    "profiles",
    "activation_atlas",
    "examples",
    "report",
]


def copy_workflow(target):
    """A fresh checkout of the workflow: only the tracked workflow files, no results."""
    target.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def snakemake(workdir, *args, timeout=600, env=None):
    """Snakemake in workdir, with `env` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# The outputs the rules mark temp() (extraction shards, render chunks, attack shards), by path under a workflow folder.
TEMPORARY = re.compile(r"/activations/shards/|/icons/.+/chunk\d+\.h5$|/attacks/.+/shards/")


def tree_digest(root):
    """sha256 of every file under results/ and resources/, by path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("results", "resources")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def image_bytes(label: int, index: int, size: int, fmt: str) -> bytes:
    """An image of the generated dataset's class `label` (its training image `index`), encoded as fmt."""
    import io

    from PIL import Image

    from activation_atlas.data.generated import class_specs, image_rng, render_image

    pixels, _ = render_image(class_specs()[label], image_rng(9, "train", index), size)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()
