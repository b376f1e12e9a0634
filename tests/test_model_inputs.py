"""Networks trained on other inputs than [0, 1] RGB: Caffe's and OpenCV's BGR in 0–255 with a mean
subtracted, and one-channel (grey) networks, configured by model.input beside model.normalize. Images
and icons stay RGB; the network is given them converted. Variants of the committed ResNet-32 built so
that each computes exactly what the published network computes on the same photograph."""

import json

import numpy as np
import pytest
import torch
import yaml

from activation_atlas.models.loading import LUMINANCE, as_the_model_sees, build_model, load_model
from activation_atlas.runtime import RunError
from activation_atlas.stages.model import probed_logits
from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.config_schema import ConfigError
from tools.runs import REPO, SCHEMA, copy_workflow, snakemake

REAL = REPO / "tests" / "data" / "cifar10-resnet32"
RESNET32 = {"kind": "user", "factory": "cifar_resnet:resnet32", "python_path": [str(REPO / "examples")]}
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# The published network's normalisation in Caffe's terms: BGR order, 0–255 pixels.
BGR = {
    "input": {"channels": "bgr", "scale": 255},
    "normalize": {"mean": [255 * m for m in MEAN[::-1]], "std": [255 * s for s in STD[::-1]]},
}


def published_state() -> dict:
    checkpoint = torch.load(REAL / "resnet32-d509ac18.th", map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}


def bgr_state() -> dict:
    """The published weights for BGR input: the first convolution's input channels reversed."""
    state = published_state()
    state["conv1.weight"] = state["conv1.weight"].flip(1).contiguous()
    return state


def grey_state() -> dict:
    """A one-channel network: the first convolution summed over the colour channels (each divided by
    its std), for grey images normalised by the mean luminance's mean and a unit std."""
    state = published_state()
    state["conv1.weight"] = (state["conv1.weight"] / torch.tensor(STD).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return state


def photographs() -> torch.Tensor:
    from PIL import Image

    paths = sorted((REAL / "images").glob("*/*"))[:16]
    return torch.stack(
        [
            torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
            for p in paths
        ]
    )


def test_a_bgr_0_255_network_computes_what_the_rgb_one_does(tmp_path):
    torch.save(bgr_state(), tmp_path / "bgr.pt")
    rgb = load_model({**RESNET32, "normalize": {"mean": MEAN, "std": STD}}, REAL / "resnet32-d509ac18.th")
    bgr = load_model({**RESNET32, **BGR}, tmp_path / "bgr.pt")
    with torch.no_grad():
        torch.testing.assert_close(bgr(photographs()), rgb(photographs()), rtol=1e-4, atol=1e-4)
    # Without the convention the same weights see the colours swapped.
    plain = load_model({**RESNET32, "normalize": {"mean": MEAN, "std": STD}}, tmp_path / "bgr.pt")
    with torch.no_grad():
        assert (plain(photographs()) - rgb(photographs())).abs().max() > 0.1


def test_a_grey_network_is_given_the_luminance_and_its_icons_are_grey(tmp_path):
    torch.save(grey_state(), tmp_path / "grey.pt")
    config = {
        **RESNET32,
        "factory": "cifar_resnet:resnet",
        "kwargs": {"in_channels": 1},
        "input": {"channels": "gray"},
        "normalize": {"mean": [0.0], "std": [1.0]},
    }
    grey = load_model(config, tmp_path / "grey.pt")
    images = photographs()
    luminance = (images * torch.tensor(LUMINANCE).view(1, 3, 1, 1)).sum(1, keepdim=True)
    net = build_model(config)
    net.load_state_dict(grey_state())
    with torch.no_grad():
        torch.testing.assert_close(grey(images), net.eval()(luminance))
    icons = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    shown = as_the_model_sees(icons, config)
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()
    assert as_the_model_sees(icons, RESNET32) is icons


def test_a_grey_network_given_rgb_is_refused_in_one_line_with_what_to_set(tmp_path):
    model = build_model({**RESNET32, "factory": "cifar_resnet:resnet", "kwargs": {"in_channels": 1}}).eval()
    with pytest.raises(RunError) as refused:
        probed_logits(model, RESNET32, 32)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("the model's forward pass refuses one 32×32 image as 3 channel(s) (rgb): RuntimeError: ")
    assert "set model.input.channels: gray" in message


@pytest.mark.parametrize(
    "model, error",
    [
        (
            {"normalize": {"mean": [0.1307], "std": [0.3081]}},
            r"model.normalize.mean = \[0.1307\] has 1 value\(s\), but the network takes 3 channel\(s\) "
            r"\(model.input.channels: rgb\): give 3; for a one-channel network set model.input.channels: gray",
        ),
        (
            {"input": {"channels": "gray"}, "normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}},
            r"model.normalize.mean = \[0.5, 0.5, 0.5\] has 3 value\(s\), but the network takes 1 channel\(s\)",
        ),
        ({"input": {"channels": "yuv"}}, r"model.input.channels"),
    ],
)
def test_normalisation_must_match_the_networks_channels(model, error):
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    config["model"].update(url=None, sha256=None, **model)
    with pytest.raises(ConfigError, match=error):
        check_config(config, SCHEMA, check_files=False)
    grey = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    grey["model"].update(input={"channels": "gray"}, normalize={"mean": [0.1307], "std": [0.3081]})
    check_config(grey, SCHEMA, check_files=False)


@pytest.mark.workflow
def test_bgr_and_grey_variants_of_the_resnet32_run_through_the_workflow(tmp_path):
    """The BGR variant scores what the published network scores on the committed photographs; the grey
    one makes grey icons."""
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    torch.save(bgr_state(), tmp_path / "bgr.pt")
    torch.save(grey_state(), tmp_path / "grey.pt")
    variants = {
        "bgr": ({"checkpoint": str(tmp_path / "bgr.pt"), **BGR}, "model.json"),
        "grey": (
            {
                "checkpoint": str(tmp_path / "grey.pt"),
                "factory": "cifar_resnet:resnet",
                "kwargs": {"in_channels": 1},
                "input": {"channels": "gray"},
                "normalize": {"mean": [0.0], "std": [1.0]},
            },
            "icons/layer3/grid3.h5",
        ),
    }
    workdir = copy_workflow(tmp_path / "w")
    for name, (model, target) in variants.items():
        run = {
            **config,
            "run": f"resnet32-{name}",
            "layers": ["layer3"],
            "grid": {"sizes": [3], "min_count": 2},
            "render": {**config["render"], "steps": 8, "attempts": 1},
            "extract": {**config["extract"], "positions_per_image": 1, "attribution": False},
            "class_atlas": {"classes": [], "comparisons": []},
            "attacks": {"enabled": False},
            "model": {**config["model"], "url": None, "sha256": None, "name": f"resnet32-{name}", **model},
            "dataset": {**config["dataset"], "path": str(REAL / "images")},
        }
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(run))
        result = snakemake(workdir, "--configfile", f"{name}.yaml", "--cores", "2", f"results/resnet32-{name}/{target}")
        assert result.returncode == 0, result.stderr[-4000:]
    card = json.loads((workdir / "results/resnet32-bgr/model.json").read_text())
    reference = json.loads((REPO / "reference/cifar10-resnet32/MANIFEST.json").read_text())
    assert card["extracted_accuracy"] == pytest.approx(
        reference["files"]["model.json"]["figures"]["extracted_accuracy"], abs=1 / 300
    )
    import h5py

    with h5py.File(workdir / "results/resnet32-grey/icons/layer3/grid3.h5", "r") as f:
        icons = f["icons"][:]
    assert len(icons) and (icons[..., 0] == icons[..., 1]).all() and (icons[..., 1] == icons[..., 2]).all()
