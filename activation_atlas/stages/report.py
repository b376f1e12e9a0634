"""Stage report (rules/report.smk): what a reviewer checks a run by, besides its figures — the run's
provenance (logs/<run>/provenance.json) and its manifest (results/<run>/MANIFEST.json)."""

from __future__ import annotations

from pathlib import Path

from activation_atlas.checking.manifest import build_manifest
from activation_atlas.runtime import write_json
from activation_atlas.workflow.provenance import job_facts


def provenance(workflow_facts: dict, provenance_out, log) -> None:
    """The workflow's facts (commit, config hash, packages, CPU of the process that ran Snakemake)
    beside this job's (its environment's packages, torch's build and threads, BLAS, CPU)."""
    facts = {"workflow": workflow_facts, "job": job_facts()}
    write_json(provenance_out, facts)
    torch = facts["job"]["torch"]
    log(
        f"commit {workflow_facts['code']['commit']}, config {workflow_facts['config_sha256'][:12]}, "
        f"torch {torch['version']} ({torch['cpu_capability']}, {torch['threads']} threads) on "
        f"{facts['job']['cpu']['model']}"
    )


def manifest(kept_outputs: list, manifest_out, run: str, seed: int, log) -> None:
    """The manifest of the run's kept outputs, in the run folder beside them."""
    out = Path(manifest_out)
    built = build_manifest(out.parent, kept_outputs, run, log, seed)
    write_json(out, built)
    log(f"{len(built['files'])} files in {out}")


def numerics(portable: bool, environment: dict, numerics_out, log) -> None:
    """Records the run's kernel mode: its results match those of other machines byte for byte only in
    portable mode (docs/artifact-evaluation.md)."""
    write_json(numerics_out, {"portable": portable, "environment": environment})
    log("portable kernels: " + (", ".join(f"{k}={v}" for k, v in environment.items()) if portable else "off"))
