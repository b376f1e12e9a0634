"""The workflow on a real SLURM cluster, through the SLURM executor plugin and profiles/slurm.

Needs a running cluster with accounting: `tools/slurm_cluster.sh start` (as root; `make test SLURM=1`
does it all). The profile is the shipped one with its placeholders filled in for the local cluster.
Checks: the tiny config runs to completion with byte-identical outputs to a local run, sacct lists
every job as COMPLETED, a render job asking for a GPU is scheduled on the (fake) GPU, and a failing
rule is reported as FAILED, with its one-line error, and a non-zero exit. Both runs start with the test
session (conftest.slurm_runs_in_background) and these tests, which come last, read what they did.
"""

import datetime
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tools.runs import REPO, TEMPORARY, copy_workflow, tree_digest

# Every test here runs Snakemake.
pytestmark = pytest.mark.workflow

PARTITION = os.environ.get("SLURM_TEST_PARTITION", "debug")
ACCOUNT = os.environ.get("SLURM_TEST_ACCOUNT", "atlas")
PLACEHOLDERS = {"CPU_PARTITION": PARTITION, "GPU_PARTITION": PARTITION, "ACCOUNT": ACCOUNT}


def local_profile(target) -> str:
    """profiles/slurm with the site placeholders filled in, render jobs asking for a GPU, and quick
    status checks (the cluster is local)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"] = {k: PLACEHOLDERS.get(v, v) for k, v in profile["default-resources"].items()}
    profile["set-resources"] = {
        rule: {k: PLACEHOLDERS.get(v, v) for k, v in values.items()}
        for rule, values in profile["set-resources"].items()
    }
    profile["set-resources"]["render_icons"]["gpu"] = 1
    profile["slurm-init-seconds-before-status-checks"] = 2
    target.mkdir(parents=True)
    (target / "config.yaml").write_text(yaml.safe_dump(profile))
    return str(target)


def snakemake_on_slurm(workdir, profile, *args, timeout=1500):
    # SIGINT on timeout: Snakemake then cancels its jobs and exits (on SIGTERM it would wait for them).
    return subprocess.run(
        [
            "timeout",
            "-s",
            "INT",
            "-k",
            "30",
            str(timeout),
            sys.executable,
            "-m",
            "snakemake",
            "--configfile",
            "config/ci.yaml",
            "--workflow-profile",
            profile,
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )


def jobs_between(start: str, end: str) -> list[dict]:
    """Allocations (not steps) of this user's jobs between two times, from the accounting database."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-S", start, "-E", end, "-o", "JobID,State,AllocTRES,ExitCode"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [dict(zip(("id", "state", "tres", "exit"), line.split("|"))) for line in out.splitlines() if line]


def now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


def cluster_answers() -> str | None:
    """None when the cluster is up, else what sinfo said."""
    result = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True)
    return None if result.returncode == 0 and "up" in result.stdout else result.stderr or result.stdout


class SlurmRuns(threading.Thread):
    """The tiny config run on the cluster, then run again with device: cuda (its extraction jobs fail),
    in one fresh copy of the workflow: (start, end, CompletedProcess) of each in `runs`."""

    def __init__(self, tmp_path_factory):
        super().__init__(daemon=True)
        self.workdir = copy_workflow(tmp_path_factory.mktemp("slurm") / "w")
        self.profile = local_profile(tmp_path_factory.mktemp("profile") / "slurm")
        self.runs: dict[str, tuple] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if cluster_answers() is not None:
                return
            for name, args, timeout in (("succeeding", (), 1500), ("failing", ("--config", "device=cuda"), 600)):
                start = now()
                result = snakemake_on_slurm(self.workdir, self.profile, *args, timeout=timeout)
                self.runs[name] = (start, now(), result)
                if result.returncode != 0:
                    return
                time.sleep(2)  # sacct's times are in whole seconds: the runs' windows must not meet
        except BaseException as error:  # handed to the tests that wait for it
            self.error = error

    def result_of(self, name: str) -> tuple:
        self.join()
        if self.error is not None:
            raise self.error
        if name not in self.runs:
            pytest.fail(f"the {name} run did not take place (the cluster did not answer, or a run before it failed)")
        return self.runs[name]


@pytest.fixture(scope="module")
def cluster():
    said = cluster_answers()
    if said is not None:
        pytest.fail(f"no SLURM cluster answers (start one: tools/slurm_cluster.sh start): {said}")


@pytest.fixture(scope="module")
def slurm_run(cluster, slurm_runs_in_background):
    start, end, result = slurm_runs_in_background.result_of("succeeding")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return slurm_runs_in_background.workdir, start, end, result


def test_the_workflow_on_slurm_matches_the_local_run_byte_for_byte(slurm_run, first_run):
    workdir, _, _, result = slurm_run
    assert "Job " in result.stderr and "submitted" in result.stderr.lower()
    local, cluster = tree_digest(first_run), tree_digest(workdir)
    kept = {path: digest for path, digest in local.items() if not TEMPORARY.search(path)}
    assert len(kept) > 100 and len(kept) < len(local)
    assert not [path for path in cluster if TEMPORARY.search(path)], "temporary files left on the cluster run"
    differing = sorted(k for k in kept if kept[k] != cluster.get(k))
    assert kept.keys() == cluster.keys() and not differing, differing


def test_sacct_lists_every_job_completed_and_render_jobs_on_a_gpu(slurm_run):
    workdir, start, end, _ = slurm_run
    jobs = jobs_between(start, end)
    n_rule_jobs = len(list((workdir / "logs").rglob("*.benchmark.tsv")))
    assert len(jobs) >= n_rule_jobs  # one allocation per job (every rule job writes a benchmark)
    assert {job["state"] for job in jobs} == {"COMPLETED"}, jobs
    assert any("gres/gpu=1" in job["tres"] for job in jobs), [job["tres"] for job in jobs]


def test_a_failing_rule_is_reported_and_fails_the_run(slurm_run, slurm_runs_in_background):
    # A GPU torch does not see (this cluster's is a fake one): the extraction jobs fail on the cluster, as
    # the config check cannot know the nodes' GPUs.
    start, end, result = slurm_runs_in_background.result_of("failing")
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "FAILED" in log and "extract" in log, log[-5000:]
    assert "error: device: cuda was asked for, but torch sees no CUDA device" in log, log[-5000:]
    assert "FAILED" in {job["state"] for job in jobs_between(start, end)}
