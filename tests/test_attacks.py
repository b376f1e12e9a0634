"""Patch attacks (activation_atlas.algorithms.attacks, stages/attacks.py): choosing cells, cropping and
pasting, the paper's static and dynamic figures; and the stage of config/ci.yaml's run, checked against
the network run here on the patched images, against its own inputs, and against a rerun with another
number of shards."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from activation_atlas.algorithms import attack_outcomes as outcomes
from activation_atlas.algorithms import attacks as alg
from activation_atlas.checking.verify import IDENTICAL, verify
from activation_atlas.formats.attack_patches import read_patches
from activation_atlas.formats.attack_results import AttackResults
from tools.runs import load_config, snakemake

CONFIG = load_config("config/ci.yaml")
RUN = CONFIG["run"]
A, B = CONFIG["class_atlas"]["comparisons"][0]
PAIR = f"{A}_vs_{B}"


def test_cells_leaning_most_towards_b_then_a_then_random_others():
    lean = np.array([0.1, -0.9, 0.8, 0.0, -0.2, 0.5, 0.3])
    chosen = alg.choose_cells(lean, 2, np.random.default_rng(0))
    assert chosen["b"].tolist() == [2, 5] and chosen["a"].tolist() == [1, 4]
    assert len(chosen["random"]) == 2 and set(chosen["random"]) <= {0, 3, 6}
    few = alg.choose_cells(lean[:5], 2, np.random.default_rng(0))
    assert few["b"].tolist() == [2, 0] and few["random"].tolist() == [3]  # one cell is left for the random control


def test_a_crop_is_centred_on_the_position_and_kept_inside_the_image():
    # Position (3, 4) of an 8×8 grid over a 32 px image: centre (14, 18); a 10 px crop from (9, 13).
    assert alg.crop_origin((3, 4), (8, 8), 32, 10) == (9, 13)
    assert alg.crop_origin((0, 7), (8, 8), 32, 16) == (0, 16)


def test_crops_from_other_classes_leave_out_images_of_either_class_and_unlabelled_ones():
    from activation_atlas.stages.attacks import crop_sources

    # Dataset folders in another order than the model's classes: labels are mapped by name.
    labels = np.array([0, 1, 2, -1, 1])
    folders, card = ["cat", "dog", "ship"], ["ship", "cat", "dog"]
    assert crop_sources(labels, folders, card, 1, 2, other_classes=False).all()
    assert crop_sources(labels, folders, card, 1, 2, other_classes=True).tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="do not name the model's classes"):
        crop_sources(labels, ["a", "b", "c"], card, 1, 2, other_classes=True)


def test_a_patch_covers_its_corner_and_nothing_else():
    images = torch.zeros(2, 3, 10, 10)
    patch = torch.ones(3, 4, 4)
    for corner, (rows, cols) in {
        "top_left": (slice(0, 4), slice(0, 4)),
        "bottom_right": (slice(6, 10), slice(6, 10)),
        "top_right": (slice(0, 4), slice(6, 10)),
    }.items():
        out = alg.pasted(images, patch, corner)
        expected = torch.zeros(2, 3, 10, 10)
        expected[:, :, rows, cols] = 1
        assert torch.equal(out, expected), corner
    assert images.sum() == 0  # the clean images are left as they were
    assert alg.patch_sides([0.2, 0.3, 0.5], 32) == [6, 10, 16]
    with pytest.raises(ValueError, match=r"give patch sides \[6, 6\] px on 32 px images: two are the same"):
        alg.patch_sides([0.2, 0.201], 32)


def test_static_dynamic_and_any_placement_count_flips_of_correct_images_only():
    # 1 patch, 2 sizes, 4 corners, 3 images; image 2 was misclassified before and is left out.
    b = 1
    top = np.zeros((1, 2, 4, 3), dtype=np.int32)
    p_b = np.full((1, 2, 4, 3), 0.1, dtype=np.float32)
    top[0, 1, 3, 0] = b  # image 0 flips at the static placement (size 1, bottom right), its most effective
    p_b[0, 1, 3, 0] = 0.7
    top[0, 0, 0, 1] = b  # image 1 flips at size 0, top left...
    p_b[0, 0, 0, 1] = 0.4
    top[0, 1, 1, 1] = 2  # ...but its most effective placement, with more of b, is answered as a third class
    p_b[0, 1, 1, 1] = 0.45
    top[0, :, :, 2] = b  # image 2 flips everywhere, but was not correct before
    results = AttackResults(
        clean_top=np.array([0, 0, 2]), clean_p_b=np.array([0.0, 0.2, 0.5], dtype=np.float32), top=top, p_b=p_b
    )
    correct = results.clean_top == 0
    figures = outcomes.placement_outcomes(results, np.array([0]), correct, b, (1, 3), lambda _: None)
    assert figures["static"] == {
        "flipped": 1,
        "attacked": 2,
        "success_rate": 0.5,
        "interval": wilson(1, 2),
        "p_b_before": 0.1,
        "p_b_after": 0.4,
        "p_b_change": 0.3,
    }
    dynamic, any_placement = figures["dynamic"], figures["any_placement"]
    assert dynamic["flipped"] == 1 and dynamic["p_b_after"] == pytest.approx(0.575)  # image 1: 0.45, not flipped
    assert any_placement["flipped"] == 2 and any_placement["success_rate"] == 1.0
    assert any_placement["interval"] == wilson(2, 2)
    rows = outcomes.by_size(results, np.array([0]), correct, b, 3, [6, 9], lambda _: None)
    assert [row["px"] for row in rows] == [6, 9]
    assert [row["static_corner"]["success_rate"] for row in rows] == [0.0, 0.5]
    # Size 0: image 1's most effective corner is top left (0.4), which flips; size 1: image 0's, which flips.
    assert [row["best_corner"]["success_rate"] for row in rows] == [0.5, 0.5]


def wilson(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    """Wilson's score interval, from its formula (Wilson 1927)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 6), round(centre + half, 6)]


@pytest.mark.parametrize("k, n", [(0, 10), (1, 2), (22, 423), (141, 141)])
def test_a_patchs_interval_is_wilsons(k, n):
    assert outcomes.wilson_interval(k, n) == pytest.approx(wilson(k, n), abs=2e-6)


def test_a_kinds_interval_resamples_its_patches_as_well_as_the_images():
    """Two patches on 100 images, one flipping every image and one none: pooled, 100 of 200 flip, and
    Wilson's interval over 200 images would be 0.43-0.57; which patches a kind has varies as much as the
    images do, so its interval spans nearly everything."""
    flips = np.zeros((2, 100), dtype=bool)
    flips[0] = True
    low, high = outcomes.bootstrap_interval(flips, np.random.default_rng(0))
    assert low == 0.0 and high == 1.0
    assert outcomes.bootstrap_interval(np.ones((3, 50), bool), np.random.default_rng(0)) == [1.0, 1.0]
    # Where nothing flips the bootstrap's interval is a point; a kind's covers Wilson's over its 150 trials.
    none = np.zeros((3, 50), bool)
    assert outcomes.bootstrap_interval(none, np.random.default_rng(0)) == [0.0, 0.0]
    assert outcomes.rate_interval(none, np.random.default_rng(0)) == wilson(0, 150) and wilson(0, 150)[1] > 0.02
    varied = np.random.default_rng(1).random((4, 300)) < np.array([[0.2], [0.25], [0.3], [0.35]])
    first = outcomes.bootstrap_interval(varied, np.random.default_rng(7))
    assert first == outcomes.bootstrap_interval(varied, np.random.default_rng(7))  # seeded: the same bytes
    assert first[0] < varied.mean() < first[1] and first[1] - first[0] < 0.2


# ------------------------------------------------------------------------------------- the CI run's stage


@pytest.fixture(scope="module")
def attack(first_run):
    folder = first_run / "results" / RUN / "attacks" / PAIR
    table = json.loads((folder / "table.json").read_text())
    images = json.loads((folder / "images.json").read_text())
    with h5py.File(folder / "results.h5") as f:
        results = {name: f[name][:] for name in f}
    columns, pixels, _ = read_patches(folder / "patches.h5")
    patches = {**columns, **{f"size{px}": pixels[px] for px in pixels}}
    return folder, table, images, results, patches


@pytest.mark.workflow
def test_the_attacked_images_are_held_out_images_of_class_a(first_run, attack):
    _, table, images, results, _ = attack
    held_out = Path("resources/datasets") / CONFIG["dataset"]["name"] / "held_out" / A
    assert images["source"] == "other_split" and images["found"] == CONFIG["dataset"]["held_out_per_class"]
    assert images["seen_in_training"] is False  # the generated dataset's held-out split: the CNN never trained on it
    assert len(images["images"]) == CONFIG["attacks"]["max_images"]
    assert all(Path(path).parent == held_out for path in images["images"])
    assert table["images"]["correct_before"] == int((results["clean_top"] == table["pair"]["a_index"]).sum())


@pytest.mark.workflow
def test_patches_are_the_comparisons_icons_crops_and_noise_at_every_size(first_run, attack):
    folder, table, _, _, patches = attack
    kinds = list(patches["kind"])
    cells = CONFIG["attacks"]["cells"]
    assert kinds[: 2 * cells] == ["b_icon"] * cells + ["b_crop"] * cells and "noise" in kinds
    assert {"a_icon", "a_crop", "random_icon", "random_crop"} <= set(kinds)
    with h5py.File(first_run / "results" / RUN / "class_atlas" / PAIR / "cells.h5") as f:
        cell_row, cell_col = f["row"][:], f["col"][:]
        lean = f["mean_attribution"][:, table["pair"]["b_index"]] - f["mean_attribution"][:, table["pair"]["a_index"]]
        icons = h5py.File(first_run / "results" / RUN / "class_atlas" / PAIR / "icons.h5")["icons"][:]
    # The b icons are the icons of the cells leaning most towards b, scaled to each size.
    most = np.argsort(-lean, kind="stable")[:cells]
    assert [tuple(c) for c in patches["cell"][:cells]] == [(cell_row[k], cell_col[k]) for k in most]
    train = sorted((first_run / "resources/datasets" / CONFIG["dataset"]["name"] / "train").rglob("*.png"))
    for px in table["placement"]["sizes_px"]:
        for p, k in enumerate(most):
            expected = np.asarray(Image.fromarray(icons[k]).resize((px, px), Image.Resampling.LANCZOS))
            assert np.array_equal(patches[f"size{px}"][p], expected)
        # A crop is the atlas image's pixels in its recorded box, scaled.
        p = kinds.index("b_crop")
        top, left, side = patches["crop"][p]
        image = np.asarray(Image.open(train[patches["image_index"][p]]).convert("RGB"))
        crop = np.ascontiguousarray(image[top : top + side, left : left + side])
        assert side == round(CONFIG["attacks"]["crop_size"] * 32)
        assert np.array_equal(
            patches[f"size{px}"][p], np.asarray(Image.fromarray(crop).resize((px, px), Image.Resampling.LANCZOS))
        )
        noise = patches[f"size{px}"][kinds.index("noise")]
        assert noise.std() > 50  # uniform noise drawn at this size, not a scaled-down blur


@pytest.mark.workflow
def test_the_recorded_answers_are_the_networks_on_the_patched_images(first_run, attack):
    """The model loaded here from the run's weights, fed an attacked image with a patch pasted by hand,
    gives the probability of b the stage recorded for that image, patch, size and corner."""
    from activation_atlas.models.loading import load_model

    _, table, images, results, patches = attack
    card = json.loads((first_run / "resources/models" / CONFIG["model"]["name"] / "model.json").read_text())
    model = load_model(
        CONFIG["model"], first_run / "resources/models" / CONFIG["model"]["name"] / "weights.pt", len(card["classes"])
    ).eval()
    b = table["pair"]["b_index"]
    px = table["placement"]["sizes_px"][-1]
    image = np.asarray(Image.open(first_run / images["images"][3]).convert("RGB")).copy()
    patch, corner = 5, alg.CORNERS.index("top_right")
    image[:px, -px:] = patches[f"size{px}"][patch]
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255), 1)[0, b].item()
    assert p == pytest.approx(float(results["p_b"][patch, -1, corner, 3]), abs=1e-5)


@pytest.mark.workflow
def test_the_table_sums_its_patches_and_any_placement_bounds_the_others(attack):
    _, table, _, results, _ = attack
    a, b = table["pair"]["a_index"], table["pair"]["b_index"]
    correct = results["clean_top"] == a
    size = table["placement"]["sizes"].index(table["placement"]["static"]["size"])
    corner = alg.CORNERS.index(table["placement"]["static"]["corner"])
    for entry in table["patches"]:
        flipped = int((results["top"][entry["patch"], size, corner][correct] == b).sum())
        assert entry["static"]["flipped"] == flipped and entry["static"]["attacked"] == int(correct.sum())
        assert entry["any_placement"]["flipped"] >= max(flipped, entry["dynamic"]["flipped"])
        assert entry["dynamic"]["p_b_after"] >= entry["static"]["p_b_after"]
        for placement in ("static", "dynamic", "any_placement"):
            low, high = entry[placement]["interval"]
            assert low <= entry[placement]["success_rate"] <= high
    for kind, figures in table["kinds"].items():
        mine = [entry for entry in table["patches"] if entry["kind"] == kind]
        assert figures["static"]["flipped"] == sum(entry["static"]["flipped"] for entry in mine)
        assert figures["static"]["attacked"] == len(mine) * int(correct.sum())
        assert figures["static"]["p_b_before"] == pytest.approx(float(results["clean_p_b"][correct].mean()), abs=1e-6)
        rates = [entry["static"]["success_rate"] for entry in mine]
        assert figures["static_per_patch"]["lowest"] == min(rates) and figures["static_per_patch"]["highest"] == max(
            rates
        )
        assert len(figures["by_size"]) == len(table["placement"]["sizes"])


@pytest.mark.workflow
def test_the_attack_is_the_same_for_any_number_of_shards_and_verify_says_so(first_run, tmp_path):
    """The attack rules run again in a copy of the CI run with one shard instead of two: verify finds
    every attack file identical to the first run's."""
    workdir = tmp_path / "one_shard"
    shutil.copytree(first_run, workdir, symlinks=True)
    config = yaml.safe_load((workdir / "config" / "ci.yaml").read_text())
    assert config["attacks"]["shards"] == 2
    config["attacks"]["shards"] = 1
    (workdir / "one_shard.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(
        workdir, "--configfile", "one_shard.yaml", "--cores", "2", "--forcerun", "attack_images", "attack_patches"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 of 1)" in (workdir / "logs" / RUN / "attacks" / PAIR / "shard0.log").read_text()
    checks, _ = verify(workdir / "results" / RUN, first_run / "results" / RUN / "MANIFEST.json")
    attack_checks = {check.path: check.status for check in checks if check.path.startswith("attacks/")}
    assert len(attack_checks) == 5 and set(attack_checks.values()) == {IDENTICAL}, attack_checks
