"""Aligned atlases (activation_atlas/workflow/aligned.py, rules/aligned.smk): the joint vectors, the checks of an
aligned config and its members, and config/ci-aligned.yaml through the workflow: the CI CNN's conv3 and
a tiny ViT's last block read the same patches of the same images, laid out once, binned once and
rendered by each network, side by side. (Its viewer's switch: test_viewer.)"""

import json

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from activation_atlas.algorithms.aligned import joint_vectors
from activation_atlas.checking.manifest import read_manifest
from activation_atlas.workflow.aligned import check_aligned_config
from activation_atlas.workflow.config_schema import ConfigError
from tools.runs import REPO, load_config

ALIGNED = yaml.safe_load((REPO / "config/ci-aligned.yaml").read_text())
RUN, GRIDS = ALIGNED["run"], ALIGNED["grid"]["sizes"]
MEMBERS = [("ci", "conv3"), ("ci-vit", "encoder.layers.encoder_layer_1")]


def test_a_joint_rows_cosine_is_the_mean_of_the_members_cosines():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)) * 7.0, rng.normal(size=(50, 40)) * 0.01  # any widths and scales
    joint = joint_vectors([a, b])
    assert np.allclose(np.linalg.norm(joint, axis=1), 1.0, atol=1e-6)

    def cosines(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return x @ x.T

    assert np.allclose(cosines(joint), (cosines(a) + cosines(b)) / 2, atol=1e-5)


def checked(change: dict, tmp_path, member_change: dict | None = None):
    """check_aligned_config of ci-aligned.yaml with `change` over it; member_change is written over the
    second member's config (a copy in tmp_path)."""
    config = {**yaml.safe_load(yaml.safe_dump(ALIGNED)), **change}
    if member_change is not None:
        member = yaml.safe_load((REPO / "config/ci-vit.yaml").read_text())
        for section, values in member_change.items():
            member[section] = {**member[section], **values} if isinstance(values, dict) else values
        (tmp_path / "member.yaml").write_text(yaml.safe_dump(member))
        config["aligned"] = [config["aligned"][0], {**config["aligned"][1], "config": str(tmp_path / "member.yaml")}]
    return check_aligned_config(config, REPO / "schemas")


@pytest.mark.parametrize("name", ["config/ci-aligned.yaml", "config/aligned-demo.yaml"])
def test_the_shipped_aligned_configs_are_valid(name, monkeypatch):
    monkeypatch.chdir(REPO)
    members = check_aligned_config(yaml.safe_load((REPO / name).read_text()), REPO / "schemas")
    assert len(members) == 2


def test_the_ci_aligned_config_names_its_members(monkeypatch):
    monkeypatch.chdir(REPO)
    members = checked({}, None)
    assert [(m.run, m.layer, m.title) for m in members] == [(*MEMBERS[0], "CNN conv3"), (*MEMBERS[1], "ViT block 2")]
    assert members[0].config == load_config("config/ci.yaml")


@pytest.mark.parametrize(
    "change, member_change, message",
    [
        ({"aligned": [{"config": "config/ci.yaml", "layer": "conv3"}]}, None, "aligned = "),
        ({"layout": {"per_layer": {}}}, None, "unknown key per_layer in layout"),
        (
            {
                "aligned": [
                    {"config": "config/ci.yaml", "layer": "conv3"},
                    {"config": "config/ci.yaml", "layer": "conv3"},
                ]
            },
            None,
            "aligned[1] repeats aligned[0] (ci, layer conv3): align two layers",
        ),
        (
            {
                "aligned": [
                    {"config": "config/ci.yaml", "layer": "conv4"},
                    {"config": "config/ci-vit.yaml", "layer": "encoder.layers.encoder_layer_1"},
                ]
            },
            None,
            "aligned[0].layer = 'conv4': not one of the layers of config/ci.yaml (conv1, conv2, conv3)",
        ),
        (
            {
                "aligned": [
                    {"config": "config/nope.yaml", "layer": "conv3"},
                    {"config": "config/ci.yaml", "layer": "conv2"},
                ]
            },
            None,
            "aligned[0].config = 'config/nope.yaml': cannot be read: ",
        ),
        (
            {},
            {"seed": 8},
            "aligned: the runs ci and ci-vit differ in seed (7 and 8): an aligned atlas needs both to read "
            "the same images at the same places",
        ),
        (
            {},
            {"extract": {"positions_per_image": 1}},
            "aligned: the runs ci and ci-vit differ in extract.positions_per_image",
        ),
        ({}, {"dataset": {"max_images": 100}}, "aligned: the runs ci and ci-vit differ in the images"),
        ({}, {"render": {"stepz": 3}}, "aligned[1].config = "),
        ({}, {"run": "ci-aligned"}, "aligned[1].config = "),
    ],
)
def test_an_aligned_config_that_cannot_align_is_one_line_naming_the_key(
    change, member_change, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError) as caught:
        checked(change, tmp_path, member_change)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.workflow
def test_the_aligned_ci_run_lays_out_bins_and_renders_both_networks_on_one_map(aligned_run):
    workdir, result = aligned_run
    results = workdir / "results" / RUN
    # The CI run's CNN is its own: loaded, not trained again. The ViT's blocks are token sequences.
    assert "first_train_model" not in result.stderr and "second_train_model" in result.stderr
    card = json.loads((workdir / "resources/models/demo_vit-ci/model.json").read_text())
    assert card["layer_grids"] == {f"encoder.layers.encoder_layer_{k}": "tokens(prefix=1)" for k in (0, 1)}
    assert card["held_out_accuracy"] > 0.6
    positions = []
    for run, layer in MEMBERS:
        with h5py.File(workdir / f"results/{run}/aligned/activations/{layer}.h5", "r") as f:
            assert f.attrs["shared_positions"] and f.attrs["spatial_size"].tolist() == [4, 4]
            positions.append((f["image_index"][:], f["position"][:]))
    # Both read the same patches: 4×4 grids both, so the very same positions.
    assert np.array_equal(positions[0][0], positions[1][0]) and np.array_equal(positions[0][1], positions[1][1])
    with h5py.File(results / "layout.h5", "r") as f:
        assert f["xy"].shape == (len(positions[0][0]), 2)
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["members"] == ["CNN conv3", "ViT block 2"]
    listed = read_manifest(results / "MANIFEST.json")["files"]
    assert {
        "layout.h5",
        "metrics.json",
        f"atlas/grid{GRIDS[0]}.png",
        f"members/ci-vit/encoder.layers.encoder_layer_1/icons/grid{GRIDS[-1]}.h5",
    } <= set(listed)
    cell_px = ALIGNED["montage"]["cell_px"]
    for grid in GRIDS:
        cells = []
        for (run, layer), title in zip(MEMBERS, metrics["members"]):
            member = results / "members" / run / layer
            with h5py.File(member / f"cells/grid{grid}.h5", "r") as f:
                cells.append((f["row"][:], f["col"][:], f["count"][:], f["mean"][:]))
            with h5py.File(member / f"icons/grid{grid}.h5", "r") as f:
                assert f.attrs["layer"] == layer and f["icons"].shape[0] == len(cells[-1][0])
            assert metrics["grids"][title][str(grid)]["cells"] == len(cells[-1][0]) > 0
            assert metrics["grids"][title][str(grid)]["mean_icon_fidelity"] > 0.5
        # One binning: the same cells and counts; each member's own mean vectors (16 and 32 channels).
        for k in range(3):
            assert np.array_equal(cells[0][k], cells[1][k])
        assert cells[0][3].shape[1] == 16 and cells[1][3].shape[1] == 32
        with (
            Image.open(results / f"atlas/grid{grid}.png") as both,
            Image.open(results / "members" / "ci" / "conv3" / f"atlas/grid{grid}.png") as one,
        ):
            assert one.size == (grid * cell_px,) * 2
            assert both.width == 2 * one.width + 16 and both.height > one.height
            # The left half below the titles is the CNN's atlas, pixel for pixel.
            assert np.array_equal(
                np.asarray(both.convert("RGB"))[-one.height :, : one.width], np.asarray(one.convert("RGB"))
            )
