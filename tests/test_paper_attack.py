"""The paper's experiment on the paper's terms (config/inceptionv1-imagenet.yaml): InceptionV1 on folders
named by WordNet id as ImageNet's are, its class comparisons at mixed5b, and the patch attack with
pictures chosen for a pair beside the icons, crops and controls, through to the attack's table."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from activation_atlas.algorithms import attacks as alg
from activation_atlas.data.image_folder import load_image
from activation_atlas.formats.attack_patches import read_patches
from activation_atlas.models.inceptionv1 import InceptionV1
from tools.runs import REPO, copy_workflow, image_bytes, snakemake

pytestmark = pytest.mark.workflow

PAPER = yaml.safe_load((REPO / "config" / "inceptionv1-imagenet.yaml").read_text())
PAPER_PAIRS = ["snorkel_vs_scuba_diver", "grey_whale_vs_great_white_shark", "frying_pan_vs_wok"]
# snorkel, scuba diver and tench, as ImageNet names their folders.
FOLDERS = {"n04251144": 0, "n10565667": 1, "n01440764": 2}
SNORKEL, SCUBA_DIVER = 507, 982


def wordnet_folders(root, per_class: int, size: int) -> None:
    for wnid, label in FOLDERS.items():
        (root / wnid).mkdir(parents=True)
        for i in range(per_class):
            (root / wnid / f"{wnid}_{i}.JPEG").write_bytes(image_bytes(label, i, size, "JPEG"))


def chosen_pictures(folder) -> list[str]:
    """Two pictures of other shapes than the images (the centre square of each is pasted)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    names = []
    for k, (width, height) in enumerate([(120, 80), (60, 90)]):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / f"chosen{k}.png")
        names.append(f"chosen{k}.png")
    return names


def test_the_paper_configs_graph_compares_and_attacks_its_three_pairs_at_mixed5b(tmp_path):
    """A dry run of the shipped config (its dataset.path set): one attack per pair of the paper, each
    from its comparison at mixed5b; with attacks.pictures, each pair's folder is its patches' input, and a
    missing one is named before anything runs."""
    workdir = copy_workflow(tmp_path / "w")
    wordnet_folders(workdir / "imagenet", per_class=1, size=32)
    for slug in PAPER_PAIRS:
        (workdir / "pictures" / slug).mkdir(parents=True)
    config = {**PAPER, "dataset": {**PAPER["dataset"], "path": "imagenet"}}
    config["attacks"] = {**PAPER["attacks"], "pictures": "pictures"}
    (workdir / "paper.yaml").write_text(yaml.safe_dump(config))

    def dry_run():
        return subprocess.run(
            [sys.executable, "-m", "snakemake", "all", "--dry-run", "--configfile", "paper.yaml"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )

    result = dry_run()
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = result.stdout.split("\n\n")
    tables = [job for job in jobs if "rule attack_table:" in job]
    assert sorted(re.search(r"pair=([^,\n]+)", job).group(1) for job in tables) == sorted(PAPER_PAIRS)
    for slug in PAPER_PAIRS:
        patches = next(job for job in jobs if "rule attack_patches:" in job and f"pair={slug}" in job)
        assert "activations/mixed5b.h5" in patches and f"pictures/{slug}" in patches
    (workdir / "pictures" / "frying_pan_vs_wok").rmdir()
    result = dry_run()
    assert result.returncode == 1
    assert "attacks.pictures = 'pictures': no folder 'frying_pan_vs_wok' in it" in result.stderr


def test_inceptionv1_on_folders_named_by_wordnet_id_runs_to_the_attack_table(tmp_path):
    """The paper's config at toy sizes, on JPEGs in ImageNet-style folders (snorkel, scuba diver, tench
    by WordNet id) with InceptionV1 weights saved from a random initialisation whose classifier favours
    snorkel: accuracy is measured on the folders, the comparison snorkel / scuba diver is made at mixed5b,
    and its attack, with two chosen pictures, reaches its table."""
    workdir = copy_workflow(tmp_path / "w")
    wordnet_folders(workdir / "imagenet", per_class=6, size=96)
    names = chosen_pictures(workdir / "pictures" / "snorkel_vs_scuba_diver")
    torch.manual_seed(0)
    state = InceptionV1().state_dict()
    state["softmax2_pre_activation_matmul.bias"][SNORKEL] += 1.0  # random logits differ by ~0.02
    torch.save(state, workdir / "inception-random.pt")
    tiny_render = {
        "icon_size": 48,
        "steps": 4,
        "attempts": 1,
        "batch_size": 8,
        "redirected_relu_steps": 2,
        "stop": None,
        "transforms": {"pad": 4, "jitters": [1], "scale_base": 0.998, "scale_exponents": [20, 39], "rotation_deg": 5},
    }
    config = {
        **PAPER,
        "run": "paper-toy",
        "device": "cpu",
        "threads": 2,
        "dataset": {**PAPER["dataset"], "path": "imagenet", "max_images": None},
        "model": {**PAPER["model"], "url": "", "checkpoint": "inception-random.pt", "input_size": 96},
        "layers": ["mixed5b"],
        "extract": {**PAPER["extract"], "batch_size": 8, "shards": 1},
        "layout": {"n_neighbors": 5, "min_dist": 0.05, "metric": "cosine"},
        "grid": {"sizes": [2], "min_count": 1},
        "render": tiny_render,
        "class_atlas": {
            **PAPER["class_atlas"],
            "comparisons": [["snorkel", "scuba diver"]],
            "grid_size": 3,
            "top_n": 8,
        },
        "attacks": {**PAPER["attacks"], "cells": 2, "max_images": 4, "batch_size": 8, "shards": 1},
        "montage": {"cell_px": 16},
        "metrics": {"trustworthiness_sample": 12, "trustworthiness_neighbors": 3},
    }
    config["class_atlas"]["top_n"] = 8
    config["attacks"]["pictures"] = "pictures"
    assert config["class_atlas"]["layer"] == "mixed5b" and config["attacks"]["sizes"] == [0.2, 0.4, 0.7]
    (workdir / "paper.yaml").write_text(yaml.safe_dump(config))
    target = "results/paper-toy/attacks/snorkel_vs_scuba_diver/table.json"
    folder = (workdir / target).parent
    result = snakemake(workdir, "--configfile", "paper.yaml", "--cores", "2", target, "results/paper-toy/model.json")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    # Snorkel's 6 images of 18 are classified right: measured, since the folders answer to the logits.
    card = json.loads((workdir / "results" / "paper-toy" / "model.json").read_text())
    assert card["extracted_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    evaluated = (workdir / "logs" / "paper-toy" / "extract" / "evaluate_model.log").read_text()
    assert "top-1 accuracy on the 18 extracted images: 0.3333" in evaluated
    images = json.loads((folder / "images.json").read_text())
    assert images["pair"] == {"a": "snorkel", "b": "scuba diver", "a_index": SNORKEL, "b_index": SCUBA_DIVER}
    assert images["seen_in_training"] is True and len(images["images"]) == 4
    assert all("/n04251144/" in path for path in images["images"])

    columns, pixels, attrs = read_patches(folder / "patches.h5")
    assert attrs["layer"] == "mixed5b"
    pictures = np.flatnonzero(columns["kind"] == "b_picture")
    assert [columns["picture"][p] for p in pictures] == names
    for p, name in zip(pictures, names):
        centre = load_image(workdir / "pictures" / "snorkel_vs_scuba_diver" / name, 96, "resize_crop")
        for px in (19, 38, 67):  # 0.2, 0.4 and 0.7 of 96 px
            assert np.array_equal(pixels[px][p], alg.resized(centre, px))

    table = json.loads((folder / "table.json").read_text())
    assert table["layer"] == "mixed5b" and table["images"]["correct_before"] == 4
    assert table["placement"]["sizes_px"] == [19, 38, 67]
    kind = table["kinds"]["b_picture"]
    assert kind["patches"] == 2 and kind["static"]["attacked"] == 8
    for placement in ("static", "dynamic", "any_placement"):
        low, high = kind[placement]["interval"]
        assert 0 <= low <= kind[placement]["success_rate"] <= high <= 1
    with h5py.File(folder / "results.h5") as f:
        assert f["top"].shape == (len(columns["kind"]), 3, 4, 4)
