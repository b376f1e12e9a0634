"""Resuming after an interruption with the same command: a Snakemake killed without its cleanup
(SIGKILL, a power cut, a closed terminal) leaves its lock in .snakemake/locks/, and the next run
refuses to start until `snakemake --unlock`. The workflow records the process that runs it; a lock
whose process is gone from this machine is stale and is removed, a lock this record cannot account
for is explained in one line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from activation_atlas.runtime import write_json

LOCKS = Path(".snakemake/locks")
OWNER = Path(".snakemake/activation_atlas.owner.json")


def process_start(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/<pid>/stat field 22), None when there is
    no such process: a pid and its start time name one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def this_process() -> dict:
    return {"pid": os.getpid(), "start": process_start(os.getpid()), "host": socket.gethostname()}


def is_running(owner: dict) -> bool:
    return owner["host"] == socket.gethostname() and process_start(owner["pid"]) == owner["start"]


def read_owner() -> dict | None:
    try:
        return json.loads(OWNER.read_text())
    except (OSError, ValueError):
        return None


def clear_stale_lock() -> str | None:
    """Before Snakemake takes its lock: remove a lock left by a run of this workflow that no longer runs,
    and record this process as the one that will hold it. Returns what it did, or why a lock stays (one
    line): a lock held by a running process is left alone, and so is one whose owner is not recorded or
    ran on another machine (Snakemake then refuses to start, and the line says how to clear it)."""
    locks = sorted(LOCKS.glob("*.lock")) if LOCKS.is_dir() else []
    owner = read_owner()
    message = None
    if locks:
        if owner is None or owner["host"] != socket.gethostname():
            where = f"by a run on {owner['host']}" if owner else "by a run this workflow did not record"
            return (
                f"this folder is locked {where}: if no other snakemake runs here, clear the lock with "
                "`snakemake --unlock`, then run the command again"
            )
        if is_running(owner):
            return None
        for lock in locks:
            lock.unlink(missing_ok=True)
        message = (
            f"removed the lock of an interrupted run (snakemake pid {owner['pid']}, no longer running); resuming it"
        )
    write_json(OWNER, this_process())
    return message
