"""Shared fixtures: validated configs and a tiny trained model on a tiny generated dataset."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "config.schema.yaml"


def validated(config: dict) -> dict:
    """The config with schema defaults filled in, as the Snakefile sees it."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return config


def load_config(name: str) -> dict:
    return validated(yaml.safe_load((REPO / name).read_text()))


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
    from activation_atlas.models.demo_cnn import DemoCNN, train_demo_cnn

    torch.manual_seed(0)
    folder = scan_image_folder(tiny_dataset / "train")
    model = DemoCNN(channels=(8, 16, 16, 16), num_classes=len(folder.classes))
    train_demo_cnn(model, load_all(folder, 32), torch.from_numpy(folder.labels), epochs=15,
                   batch_size=32, lr=0.01, seed=0, log=lambda _: None)
    return model.eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
