"""A lock left by a killed run is removed by the next run; any other lock is left alone, explained."""

import json
import os
import subprocess
import sys

import pytest

from activation_atlas.workflow import run_lock
from tools.runs import REPO


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("results/ci/a.h5\n")
    return tmp_path


def finished_process() -> dict:
    """The record of a process that has exited."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, activation_atlas.workflow.run_lock as r; print(json.dumps(r.this_process()))",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    record = json.loads(child.communicate()[0])
    assert record["start"] is not None
    return record


def write_owner(record: dict) -> None:
    run_lock.OWNER.write_text(json.dumps(record))


def test_the_lock_of_a_run_that_no_longer_runs_is_removed_and_this_run_recorded(workdir):
    dead = finished_process()
    write_owner(dead)
    note = run_lock.clear_stale_lock()
    assert note == (
        f"removed the lock of an interrupted run (snakemake pid {dead['pid']}, no longer running); resuming it"
    )
    assert not list(run_lock.LOCKS.glob("*.lock"))
    assert json.loads(run_lock.OWNER.read_text())["pid"] == os.getpid()


def test_a_reused_pid_is_not_taken_for_the_run_that_held_the_lock(workdir):
    write_owner({**run_lock.this_process(), "start": "1"})  # this pid, another start time
    assert run_lock.clear_stale_lock().startswith("removed the lock of an interrupted run")


def test_the_lock_of_a_running_process_is_left_alone(workdir):
    write_owner(run_lock.this_process())
    assert run_lock.clear_stale_lock() is None
    assert list(run_lock.LOCKS.glob("*.lock"))


@pytest.mark.parametrize(
    "owner, where",
    [
        (None, "by a run this workflow did not record"),
        ({"pid": 1, "start": "1", "host": "login-node-7"}, "by a run on login-node-7"),
    ],
)
def test_a_lock_this_workflow_cannot_account_for_is_explained_with_the_command_that_clears_it(workdir, owner, where):
    if owner:
        write_owner(owner)
    assert run_lock.clear_stale_lock() == (
        f"this folder is locked {where}: if no other snakemake runs here, clear the lock with "
        "`snakemake --unlock`, then run the command again"
    )
    assert list(run_lock.LOCKS.glob("*.lock"))


def test_without_a_lock_the_run_only_records_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_lock.clear_stale_lock() is None
    assert json.loads(run_lock.OWNER.read_text()) == run_lock.this_process()
