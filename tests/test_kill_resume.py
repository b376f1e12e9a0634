"""A run of config/ci.yaml killed (SIGKILL, Snakemake and its jobs) a random time into a job of each rule
in turn, and resumed each time by the README's command alone (tools/kill_resume.py): no output looks
finished that is not, and the last run ends with an uninterrupted run's bytes and nothing left over.
`python -m tools.kill_resume --kills 20` kills more often."""

import pytest

from tools.kill_resume import kill_and_resume


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.workflow
def test_a_kill_in_any_rule_leaves_no_output_that_looks_finished_and_resumes_to_the_same_bytes(tmp_path, seed):
    report = kill_and_resume(None, seed, tmp_path)
    assert not report["failures"], report["failures"]
    assert report["kills"] == len(report["rules"]) > 10
    assert report["jobs_killed_mid_work"] > report["kills"] // 2
