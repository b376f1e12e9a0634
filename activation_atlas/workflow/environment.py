"""The process environment every job of a run inherits, set while Snakemake parses the workflow (before
any job starts; on a cluster each job parses the workflow again and so sets it again)."""

from __future__ import annotations

import os

from activation_atlas.workflow.paths import TORCH_HOME
from activation_atlas.workflow.provenance import PORTABLE_ENVIRONMENT

# glibc returns torch's large per-batch buffers to the OS and faults them back in on every batch;
# these thresholds keep them mapped (1.3-2x faster torch stages on CPU).
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


def prepare_job_environment(portable: bool) -> None:
    """Portable numerics when the config asks for them; the allocator's thresholds and torchvision's
    weights folder ($TORCH_HOME, kept with the other resources) unless already set."""
    if portable:
        os.environ.update(PORTABLE_ENVIRONMENT)
    for name, value in {**ALLOCATOR, "TORCH_HOME": os.path.abspath(TORCH_HOME)}.items():
        os.environ.setdefault(name, value)


def sorted_keys(value):
    """value with the keys of every mapping in it sorted: Snakemake compares params as text, so the
    order keys are written in a config file must not count as a change of settings."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value
