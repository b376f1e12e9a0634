"""SIGKILLs at random points of a config/ci.yaml run, each followed by the README's command alone
(`snakemake --configfile config/ci.yaml`), and what is left after each.

Kill k aims at the rules in the order their first job starts in an uninterrupted run, one after
another (so every rule is aimed at once per pass): the run is killed, Snakemake and its jobs together
(SIGKILL to the process group), a random time into the first job that starts of that rule or a later
one, the time drawn up to that rule's duration in the uninterrupted run. The same command then runs
again, and is killed at the next aim, until the last run of a pass finishes by itself.

Checked after every kill: no output looks finished that is not: every file under results/ and
resources/ has the bytes of the uninterrupted run, or lies under a `.partial` name. Checked at the end
of every pass: the last run succeeded, every output has the uninterrupted run's bytes, and no
temporary file, partial output, lock or incomplete marker of an existing output is left. Markers of
outputs that are gone are counted apart: Snakemake ignores them (see inert_markers).

  python -m tools.kill_resume [--kills 20] [--seed 0] [--report logs/kill_resume.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from tools.runs import REPO, TEMPORARY, copy_workflow, tree_digest

COMMAND = [sys.executable, "-m", "snakemake", "--configfile", "config/ci.yaml"]
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
JOB_END = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
PARTIAL = re.compile(r"\.partial(/|$)")


class Watched:
    """A run of the README's command whose job starts and ends are timed as Snakemake reports them."""

    def __init__(self, workdir: Path, *extra: str):
        self.start = time.monotonic()
        self.process = subprocess.Popen(
            [*COMMAND, *extra],
            cwd=workdir,
            start_new_session=True,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.started: list[tuple[float, str, int]] = []  # (seconds in, rule, jobid)
        self.ended: dict[int, float] = {}
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        rule = None
        for line in self.process.stderr:
            line = line.rstrip("\n")
            self.stderr.append(line)
            now = time.monotonic() - self.start
            if match := JOB_START.match(line):
                rule = match.group(1)
            elif (match := JOB_ID.match(line)) and rule:
                self.started.append((now, rule, int(match.group(1))))
                rule = None
            elif match := JOB_END.match(line):
                self.ended[int(match.group(1))] = now

    def wait(self, timeout: float = 1800) -> int:
        code = self.process.wait(timeout=timeout)
        self.reader.join()
        return code

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.reader.join()


def rule_timeline(run: Watched) -> tuple[list[str], dict[str, float]]:
    """Rules in the order their first job started, and the median duration of each rule's jobs."""
    order, durations = [], defaultdict(list)
    for start, rule, jobid in run.started:
        if rule not in order:
            order.append(rule)
        if jobid in run.ended:
            durations[rule].append(run.ended[jobid] - start)
    return [r for r in order if r != "all"], {rule: statistics.median(d) for rule, d in durations.items()}


def incomplete_outputs(workdir: Path) -> list[str]:
    """The outputs Snakemake marked incomplete: the jobs that were running when the run was killed."""
    folder = workdir / ".snakemake" / "incomplete"
    # Snakemake names each marker by the output's urlsafe base64, cut into "@"-prefixed folders when long.
    return sorted(
        base64.urlsafe_b64decode("".join(p.lstrip("@") for p in marker.relative_to(folder).parts)).decode()
        for marker in folder.rglob("*")
        if marker.is_file()
    )


def unfinished_outputs_that_look_finished(workdir: Path, clean: dict[str, str]) -> list[str]:
    """Files under results/ and resources/ that are neither partial nor the uninterrupted run's bytes."""
    return sorted(
        path for path, digest in tree_digest(workdir).items() if not PARTIAL.search(path) and clean.get(path) != digest
    )


def leftovers(workdir: Path) -> list[str]:
    """Temporary files, partial outputs, locks, and incomplete markers of outputs that exist, left after
    a finished run (Snakemake would remake those outputs, or stop without --rerun-incomplete)."""
    found = [path for path in tree_digest(workdir) if TEMPORARY.search(path) or PARTIAL.search(path)]
    found += [str(p.relative_to(workdir)) for p in workdir.glob("**/*.partial")]
    found += [f"incomplete marker of {output}" for output in incomplete_outputs(workdir) if (workdir / output).exists()]
    found += [str(p.relative_to(workdir)) for p in (workdir / ".snakemake").glob("locks/*")]
    return sorted(set(found))


def inert_markers(workdir: Path) -> list[str]:
    """Incomplete markers of outputs that no longer exist: a temp file whose job was killed after writing
    it but before Snakemake recorded the job's end, taken as it was by a later run (Snakemake checks the
    markers only of the jobs it knows when it starts, not of those a checkpoint adds; outputs are
    atomic, so the file was whole), and removed once used. Snakemake ignores a marker of a missing
    file, and a job that makes the file again clears it."""
    return [output for output in incomplete_outputs(workdir) if not (workdir / output).exists()]


def wait_for_aim(run: Watched, order: list[str], aim: int, timeout: float = 1800) -> tuple[str, float] | None:
    """The first job of rule order[aim] or a later one started by this run: (rule, seconds in), or None
    when the run ended first."""
    seen, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        for start, rule, _ in run.started[seen:]:
            seen += 1
            if rule in order and order.index(rule) >= aim:
                return rule, start
        if run.process.poll() is not None:
            run.reader.join()
            if seen == len(run.started):
                return None
        time.sleep(0.05)
    raise TimeoutError(f"no job of {order[aim]} or a later rule within {timeout} s")


def one_pass(root: Path, name: str, aims: list[int], order, durations, clean, rng, records) -> dict:
    """Runs of the README's command in a fresh copy of the workflow, killed at each aim in turn, then
    run once more to the end; what was checked, for the report."""
    workdir = copy_workflow(root / name)
    kills, early_exits = 0, []
    for aim in aims:
        run = Watched(workdir)
        hit = wait_for_aim(run, order, aim)
        if hit is not None:
            rule, started = hit
            delay = rng.uniform(0, durations.get(rule, 1.0))
            time.sleep(max(0.0, started + delay - (time.monotonic() - run.start)))
        if run.process.poll() is not None:  # the run ended before the aim: this pass ends here
            early_exits.append(run.wait())
            break
        at = time.monotonic() - run.start
        run.kill()
        kills += 1
        records.append(
            {
                "pass": name,
                "aimed_at": order[aim],
                "job_started": rule,
                "delay_s": round(delay, 2),
                "killed_at_s": round(at, 2),
                "incomplete": incomplete_outputs(workdir),
                "partial": sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*.partial")),
                "look_finished_but_are_not": unfinished_outputs_that_look_finished(workdir, clean),
            }
        )
        print(
            f"kill {len(records)} ({name}): {rule} +{delay:.1f} s at {at:.1f} s, "
            f"{len(records[-1]['incomplete'])} outputs incomplete",
            file=sys.stderr,
            flush=True,
        )
    final = Watched(workdir)
    code = final.wait()
    outputs = tree_digest(workdir)
    kept = {path: digest for path, digest in clean.items() if not TEMPORARY.search(path)}
    differing = sorted(path for path in kept.keys() | outputs.keys() if kept.get(path) != outputs.get(path))
    return {
        "pass": name,
        "kills": kills,
        "runs_that_ended_before_their_aim": early_exits,
        "final_exit": code,
        "files_compared": len(kept),
        "differing": differing,
        "left_over": leftovers(workdir),
        "inert_markers": inert_markers(workdir),
        "final_stderr_tail": final.stderr[-20:] if code else [],
    }


def kill_and_resume(kills: int | None, seed: int, root: Path) -> dict:
    """An uninterrupted run, then passes of killed and resumed runs (kills in all; None: one a rule), in
    folders under root; the report, its failures listed."""
    rng = random.Random(seed)
    clean_dir = copy_workflow(root / "clean")
    clean_run = Watched(clean_dir, "--notemp")  # its temp files kept: a killed run may leave some
    assert clean_run.wait() == 0, "\n".join(clean_run.stderr[-30:])
    clean_seconds = round(time.monotonic() - clean_run.start, 1)
    order, durations = rule_timeline(clean_run)
    clean = tree_digest(clean_dir)
    print(f"uninterrupted run: {clean_seconds} s, {len(clean)} files, rules {order}", file=sys.stderr)
    kills = len(order) if kills is None else kills
    records, passes = [], []
    while len(records) < kills:
        aims = list(range(min(len(order), kills - len(records))))
        passes.append(one_pass(root, f"pass{len(passes) + 1}", aims, order, durations, clean, rng, records))
        if passes[-1]["kills"] == 0:
            raise RuntimeError("a pass ended without a kill")
    failures = [
        f"kill {i + 1}: {r['look_finished_but_are_not']}"
        for i, r in enumerate(records)
        if r["look_finished_but_are_not"]
    ]
    failures += [
        f"{p['pass']}: exit {p['final_exit']}, differing {p['differing'][:5]}, left {p['left_over'][:5]}"
        for p in passes
        if p["final_exit"] or any(p["runs_that_ended_before_their_aim"]) or p["differing"] or p["left_over"]
    ]
    return {
        "seed": seed,
        "kills": len(records),
        "uninterrupted_s": clean_seconds,
        "rules": order,
        "rule_median_s": {rule: round(s, 2) for rule, s in durations.items()},
        "jobs_killed_mid_work": sum(bool(r["incomplete"]) for r in records),
        "rules_killed_mid_work": sorted({r["job_started"] for r in records if r["incomplete"]}),
        "passes": passes,
        "records": records,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=REPO / "logs" / "kill_resume.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = kill_and_resume(args.kills, args.seed, Path(tmp))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "seed",
                    "kills",
                    "uninterrupted_s",
                    "jobs_killed_mid_work",
                    "rules_killed_mid_work",
                    "failures",
                )
            },
            indent=1,
        )
    )
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    main()
