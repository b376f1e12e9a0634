"""Hypothesis mutates config/ci.yaml (tools/fuzz_config.py): every mutation is rejected before any job
with one line that names a key, or accepted, and then Snakemake's dry run succeeds with every output
inside the working directory; the slow test runs a few accepted ones for real.
`python -m tools.fuzz_config --mutations 1000` runs many more."""

import pytest
from hypothesis import HealthCheck, assume, given, settings

from tools.fuzz_config import checked, dry_run, mutated, mutations, real_run
from tools.runs import copy_workflow

# Derandomized: the same mutations on every run of the suite, so a red CI is reproducible.
FUZZ = settings(database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@settings(FUZZ, max_examples=300)
@given(mutations)
def test_a_mutated_config_is_rejected_naming_a_key_or_accepted(mutation_list):
    kind, detail = checked(mutated(mutation_list))
    assert kind in ("rejected", "accepted"), detail


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("fuzz") / "workflow")


@pytest.mark.workflow
@settings(FUZZ, max_examples=3)
@given(mutations)
def test_an_accepted_mutation_dry_runs_with_its_outputs_inside_the_working_directory(workflow_copy, mutation_list):
    config = mutated(mutation_list)
    assume(checked(config)[0] == "accepted")
    kind, detail = dry_run(config, workflow_copy)
    assert kind == "accepted", detail


@pytest.mark.slow
@pytest.mark.workflow
@settings(FUZZ, max_examples=3)
@given(mutations)
def test_an_accepted_mutation_runs_or_fails_on_one_line_and_changes_only_its_outputs(tmp_path_factory, mutation_list):
    config = mutated(mutation_list)
    assume(checked(config)[0] == "accepted")
    root = tmp_path_factory.mktemp("fuzz_run")
    (root / "neighbour.txt").write_text("a file beside the working directory")
    kind, detail = real_run(config, copy_workflow(root / "workflow"))
    assert kind in ("ran", "failed on one line"), detail
