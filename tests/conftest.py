"""Shared fixtures: validated configs and a tiny trained model on a tiny generated dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.runs import REPO, copy_workflow, snakemake


def run_ci_config(workdir):
    """config/ci.yaml run in workdir, its temporary files kept (the rerun-contract test needs every
    job's outputs)."""
    # Minutes alone; the SLURM tests' runs share the cores with it at the start of a session.
    result = snakemake(workdir, "--configfile", "config/ci.yaml", "--cores", "2", "--notemp", timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def pytest_collection_modifyitems(config, items):
    """The SLURM tests come last: their runs go on beside the other tests (slurm_runs_in_background)."""
    items.sort(key=is_slurm_test)  # stable: the order is otherwise kept


def is_slurm_test(item) -> bool:
    return "slurm" in Path(item.path).relative_to(REPO / "tests").parts[:-1]


@pytest.fixture(scope="session", autouse=True)
def slurm_runs_in_background(request, tmp_path_factory):
    """The SLURM tests' workflow runs, started with the session when SLURM tests are selected: the
    cluster's jobs spend much of their time waiting on the scheduler, so the other tests run meanwhile."""
    if not any(is_slurm_test(item) for item in request.session.items):
        yield None
        return
    from test_slurm import SlurmRuns

    runs = SlurmRuns(tmp_path_factory)
    runs.start()
    yield runs
    runs.join()


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """A run of config/ci.yaml through Snakemake in a fresh copy of the workflow (shared by the workflow,
    formats, rerun-contract and viewer tests)."""
    return run_ci_config(copy_workflow(tmp_path_factory.mktemp("run") / "a"))


@pytest.fixture(scope="session")
def aligned_run(first_run, tmp_path_factory):
    """config/ci-aligned.yaml run in a copy of the CI run's workflow folder (so the CI CNN is not trained
    again: the aligned run loads the CI run's own workflow, whose outputs are there)."""
    workdir = tmp_path_factory.mktemp("aligned") / "a"
    shutil.copytree(first_run, workdir, symlinks=True)
    result = snakemake(workdir, "--configfile", "config/ci-aligned.yaml", "--cores", "2", timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, result


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    from activation_atlas.data.generated import generate_dataset

    root = tmp_path_factory.mktemp("dataset")
    generate_dataset(root, seed=3, image_size=32, images_per_class={"train": 30, "held_out": 5})
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset):
    """A demo CNN (8-16-16-16 channels) trained briefly on the tiny dataset, in eval mode."""
    from activation_atlas.data.image_folder import load_all, scan_image_folder
    from activation_atlas.models.demo_cnn import DemoCNN
    from activation_atlas.models.training import train_classifier

    torch.manual_seed(0)
    folder = scan_image_folder(tiny_dataset / "train")
    model = DemoCNN(channels=(8, 16, 16, 16), num_classes=len(folder.classes))
    train_classifier(
        model,
        load_all(folder, 32),
        torch.from_numpy(folder.labels),
        epochs=15,
        batch_size=32,
        lr=0.01,
        seed=0,
        log=lambda _: None,
    )
    return model.eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
