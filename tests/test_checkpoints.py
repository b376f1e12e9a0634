"""Checkpoints as the field saves them, made from the committed ResNet-32 (a real checkpoint of an older
PyTorch, tests/data/cifar10-resnet32): PyTorch Lightning's, torch.compile's, timm's with an EMA copy,
Hugging Face's file names. Each loads into the network exactly, or is refused in a few lines that say
why, with the full key lists in the rule's log."""

import json

import pytest
import torch
import yaml

from activation_atlas.models.checkpoint import load_checkpoint
from activation_atlas.models.loading import build_model, load_model
from activation_atlas.runtime import ProgressLog, RunError
from tools.runs import REPO, copy_workflow, snakemake

REAL = REPO / "tests" / "data" / "cifar10-resnet32"
RESNET32 = {"kind": "user", "factory": "cifar_resnet:resnet32", "python_path": [str(REPO / "examples")]}


@pytest.fixture(scope="module")
def published() -> dict:
    """The published ResNet-32's own state dict (its 'module.' prefixes taken off)."""
    checkpoint = torch.load(REAL / "resnet32-d509ac18.th", map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}


def lightning_checkpoint(state: dict, hyper_parameters: dict | None = None) -> dict:
    """What a LightningModule holding the network as `self.model` saves."""
    return {
        "epoch": 29,
        "global_step": 11730,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"model.{k}": v for k, v in state.items()},
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters or {"lr": 0.1},
        "optimizer_states": [],
        "lr_schedulers": [],
    }


def outputs(model) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    return outputs(load_model(RESNET32, REAL / "resnet32-d509ac18.th"))


@pytest.mark.parametrize(
    "name, saved",
    [
        ("lightning.ckpt", lambda s: lightning_checkpoint(s)),
        ("compiled.pt", lambda s: {f"_orig_mod.{k}": v for k, v in s.items()}),
        ("ddp-compiled.pt", lambda s: {"model": {f"module._orig_mod.{k}": v for k, v in s.items()}, "epoch": 3}),
        ("timm-ema-only.pth.tar", lambda s: {"epoch": 3, "arch": "resnet32", "state_dict_ema": s}),
    ],
)
def test_checkpoints_in_the_fields_containers_load_exactly(tmp_path, published, reference, name, saved):
    torch.save(saved(published), tmp_path / name)
    lines = []
    model = load_model(RESNET32, tmp_path / name, log=lines.append)
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert any("taken off every key" in line or "entry" in line for line in lines), lines


def test_the_trained_weights_are_read_before_their_moving_average(tmp_path, published, reference):
    averaged = {k: v + 1 if v.is_floating_point() else v for k, v in published.items()}
    torch.save({"state_dict": published, "state_dict_ema": averaged}, tmp_path / "timm.pth.tar")
    lines = []
    model = load_model(RESNET32, tmp_path / "timm.pth.tar", log=lines.append)
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert lines == ["checkpoint: weights read from entry 'state_dict' (the file also holds 'state_dict_ema')"]


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_hugging_face_file_names_load(tmp_path, published, reference, name):
    from safetensors.torch import save_file

    if name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in published.items()}, str(tmp_path / name))
    else:
        torch.save(published, tmp_path / name)
    torch.testing.assert_close(outputs(load_model(RESNET32, tmp_path / name)), reference, rtol=0, atol=0)


def test_a_prefix_is_never_a_partial_match(tmp_path, published):
    """Keys under 'model.' plus a loss's own parameter: no single prefix makes them the model's."""
    saved = lightning_checkpoint(published)
    saved["state_dict"]["criterion.weight"] = torch.ones(10)
    torch.save(saved, tmp_path / "lightning.ckpt")
    with pytest.raises(RunError) as refused:
        load_model(RESNET32, tmp_path / "lightning.ckpt")
    message = str(refused.value)
    assert "carry 'model.' before the model's names" in message and "LightningModule" in message


def test_another_depth_is_refused_in_a_few_lines_with_its_cause_and_the_full_lists_in_the_log(tmp_path, published):
    torch.save(lightning_checkpoint(published), tmp_path / "lightning.ckpt")
    deeper = {**RESNET32, "factory": "cifar_resnet:resnet", "kwargs": {"depth": 56}}
    log_path = tmp_path / "describe.log"
    with pytest.raises(SystemExit), ProgressLog(log_path) as log:
        load_model(deeper, tmp_path / "lightning.ckpt", log=log)
    logged = log_path.read_text()
    message = logged[logged.index("error: ") : logged.index("\nmissing (")]
    assert len(message.splitlines()) <= 15, message
    assert "(with the prefix 'model.' taken off every key)" in message
    assert "repeat a block a different number of times (layer1.5.conv1.weight is in one only): another depth" in message
    assert "missing (120): layer1.5.conv1.weight, " in message and "(116 more)" in message
    listed = next(line for line in logged.splitlines() if line.startswith("missing ("))
    assert len(listed.split(", ")) == 120


def test_a_checkpoint_for_another_number_of_classes_says_so(tmp_path, published):
    torch.save(published, tmp_path / "ten.pt")
    with pytest.raises(
        RunError,
        match=r"(?s)other shape \(2\): linear.weight \(10, 64\) ≠ model \(100, 64\).*"
        r"only the last layer \(linear\) has another shape.*another number of classes",
    ):
        load_checkpoint(build_model({**RESNET32, "kwargs": {"num_classes": 100}}), tmp_path / "ten.pt")


def test_a_lightning_checkpoints_constructor_arguments_build_the_network_when_asked(tmp_path, published, reference):
    torch.save(lightning_checkpoint(published, {"depth": 32, "num_classes": 10, "lr": 0.1}), tmp_path / "l.ckpt")
    config = {**RESNET32, "factory": "cifar_resnet:resnet", "kwargs_from_checkpoint": True}
    lines = []
    model = load_model(config, tmp_path / "l.ckpt", log=lines.append)
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert (
        "model.kwargs_from_checkpoint: depth=32, num_classes=10 from hyper_parameters; not arguments of the "
        "factory: lr" in lines
    )
    # Without it, the factory's default depth (32 here too) is built; with another default it would not fit.
    torch.save({"state_dict": published}, tmp_path / "plain.ckpt")
    with pytest.raises(RunError, match="has no 'hyper_parameters' entry"):
        load_model(config, tmp_path / "plain.ckpt")


def tutorial_hyper_parameters(model_hparams: dict) -> dict:
    """What a LightningModule built as `Module(model_name, model_hparams, optimizer_name, optimizer_hparams)`
    saves (the pattern of the UvA deep-learning tutorials): the network's arguments one dict below."""
    return {
        "model_name": "ResNet",
        "model_hparams": model_hparams,
        "optimizer_name": "SGD",
        "optimizer_hparams": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    }


def test_nested_model_hparams_build_the_factory_with_them_and_the_log_says_from_where(tmp_path, published, reference):
    config = {**RESNET32, "factory": "cifar_resnet:resnet", "kwargs_from_checkpoint": True}
    # The factory's default depth is 32: a ResNet-20's checkpoint loads only if model_hparams build the network.
    torch.manual_seed(0)
    resnet20 = build_model({**RESNET32, "factory": "cifar_resnet:resnet", "kwargs": {"depth": 20}})
    torch.save(
        lightning_checkpoint(
            resnet20.state_dict(), tutorial_hyper_parameters({"depth": 20, "num_classes": 10, "act_fn_name": "relu"})
        ),
        tmp_path / "r20.ckpt",
    )
    lines = []
    model = load_model(config, tmp_path / "r20.ckpt", log=lines.append)
    torch.testing.assert_close(outputs(model), outputs(resnet20.eval()), rtol=1e-4, atol=1e-6)  # channels_last
    assert (
        "model.kwargs_from_checkpoint: depth=20, num_classes=10 from hyper_parameters.model_hparams; not arguments "
        "of the factory: act_fn_name; the rest of hyper_parameters, not read: model_name, optimizer_hparams, "
        "optimizer_name"
    ) in lines
    # The committed ResNet-32 so saved loads exactly.
    torch.save(
        lightning_checkpoint(published, tutorial_hyper_parameters({"depth": 32, "num_classes": 10})),
        tmp_path / "r32.ckpt",
    )
    torch.testing.assert_close(outputs(load_model(config, tmp_path / "r32.ckpt")), reference, rtol=0, atol=0)


def test_a_factory_taking_any_keyword_never_swallows_a_dict_of_arguments(tmp_path, published, reference):
    (tmp_path / "any_factory.py").write_text(
        "from cifar_resnet import resnet\n\n\ndef build(**kwargs):\n    return resnet(**kwargs)\n"
    )
    torch.save(
        lightning_checkpoint(published, tutorial_hyper_parameters({"depth": 32, "num_classes": 10})),
        tmp_path / "r32.ckpt",
    )
    config = {
        **RESNET32,
        "factory": "any_factory:build",
        "kwargs_from_checkpoint": True,
        "python_path": RESNET32["python_path"] + [str(tmp_path)],
    }
    with pytest.raises(
        RunError,
        match=r"the factory takes \*\*kwargs and names none of the arguments in checkpoint "
        r".*r32.ckpt, whose hyper_parameters hold dicts \(model_hparams, "
        r"optimizer_hparams\): which of them holds its arguments cannot be told. Name "
        r"the one to read: model.kwargs_from_checkpoint: one of hyper_parameters, "
        r"model_hparams, optimizer_hparams$",
    ):
        load_model(config, tmp_path / "r32.ckpt")
    lines = []
    model = load_model({**config, "kwargs_from_checkpoint": "model_hparams"}, tmp_path / "r32.ckpt", log=lines.append)
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert lines[0] == (
        "model.kwargs_from_checkpoint: depth=32, num_classes=10 from hyper_parameters.model_hparams; "
        "the rest of hyper_parameters, not read: model_name, optimizer_hparams, optimizer_name"
    )
    # At the top level, its scalars are taken as before, its dicts never.
    torch.save(
        lightning_checkpoint(published, {"depth": 32, "num_classes": 10, "model_hparams": {"depth": 20}}),
        tmp_path / "top.ckpt",
    )
    with pytest.raises(RunError, match="which of them holds its arguments cannot be told"):
        load_model(config, tmp_path / "top.ckpt")
    lines = []
    model = load_model(
        {**config, "kwargs_from_checkpoint": "hyper_parameters"}, tmp_path / "top.ckpt", log=lines.append
    )
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert lines[0] == (
        "model.kwargs_from_checkpoint: depth=32, num_classes=10 from hyper_parameters; not arguments "
        "of the factory: model_hparams"
    )


def test_arguments_in_two_places_or_a_dict_not_there_are_refused_with_the_names_to_pick(tmp_path, published):
    config = {**RESNET32, "factory": "cifar_resnet:resnet", "kwargs_from_checkpoint": True}
    torch.save(
        lightning_checkpoint(published, {"num_classes": 10, "model_hparams": {"depth": 32, "num_classes": 10}}),
        tmp_path / "both.ckpt",
    )
    with pytest.raises(
        RunError,
        match=r"the factory's arguments are in more than one place of checkpoint .*both.ckpt: "
        r"hyper_parameters \(num_classes\); hyper_parameters.model_hparams \(depth, "
        r"num_classes\). Name the one to read: model.kwargs_from_checkpoint: one of "
        r"hyper_parameters, model_hparams$",
    ):
        load_model(config, tmp_path / "both.ckpt")
    with pytest.raises(
        RunError,
        match=r"model.kwargs_from_checkpoint = 'net_hparams': checkpoint .*both.ckpt has no "
        r"dict of that name in its hyper_parameters; valid: hyper_parameters, "
        r"model_hparams$",
    ):
        load_model({**config, "kwargs_from_checkpoint": "net_hparams"}, tmp_path / "both.ckpt")


@pytest.fixture
def lightning_attribute_dict(monkeypatch):
    """Lightning's AttributeDict (a dict subclass) as torch.save pickles it, under its module's name, without
    Lightning installed: a class of that name in a module of that name, for the time of the save."""
    import sys
    import types

    attribute_dict = type("AttributeDict", (dict,), {"__module__": "lightning.fabric.utilities.data"})
    for name in ("lightning", "lightning.fabric", "lightning.fabric.utilities", "lightning.fabric.utilities.data"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["lightning.fabric.utilities.data"].AttributeDict = attribute_dict
    return attribute_dict


def test_a_lightning_checkpoints_attribute_dict_and_namespace_arguments_are_read_as_data(
    tmp_path, published, reference, lightning_attribute_dict, monkeypatch
):
    import argparse
    import sys

    saved = lightning_attribute_dict(depth=32, num_classes=10, args=argparse.Namespace(lr=0.1, epochs=30))
    torch.save(lightning_checkpoint(published, saved), tmp_path / "l.ckpt")
    for name in [name for name in sys.modules if name.startswith("lightning")]:
        monkeypatch.delitem(sys.modules, name)  # read where Lightning is not installed
    lines = []
    model = load_model(
        {**RESNET32, "factory": "cifar_resnet:resnet", "kwargs_from_checkpoint": True},
        tmp_path / "l.ckpt",
        log=lines.append,
    )
    torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0)
    assert (
        "model.kwargs_from_checkpoint: depth=32, num_classes=10 from hyper_parameters; not arguments of the "
        "factory: args" in lines
    )


def test_a_checkpoint_holding_another_pickled_object_is_refused_by_its_name(tmp_path, published):
    from fractions import Fraction

    torch.save(lightning_checkpoint(published, {"lr": Fraction(1, 10)}), tmp_path / "l.ckpt")
    with pytest.raises(
        RunError,
        match=r"^checkpoint .*l.ckpt holds a pickled fractions.Fraction \(a whole model saved "
        r"with torch.save\(model\), or an object among a training script's settings\?\), "
        r"which is not loaded: unpickling it would run code the file names. save the "
        r"weights with torch.save\(model.state_dict\(\), path\)",
    ):
        load_model(RESNET32, tmp_path / "l.ckpt")


def card_run(tmp_path, checkpoint, **model):
    """Snakemake making the ResNet-32 config's model card (the rule that loads the checkpoint) from
    `checkpoint` instead of the URL, in a fresh copy of the workflow."""
    workdir = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    config["model"].update(url=None, sha256=None, checkpoint=str(checkpoint), **model)
    config["dataset"]["path"] = str(REAL / "images")
    (workdir / "run.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(
        workdir, "--configfile", "run.yaml", "--cores", "2", "resources/models/cifar10-resnet32/model.json"
    )
    return workdir, result


@pytest.mark.workflow
def test_the_workflow_reads_lightning_and_compiled_checkpoints_and_refuses_another_architecture_briefly(
    tmp_path, published
):
    torch.save(lightning_checkpoint(published), tmp_path / "resnet32.ckpt")
    workdir, result = card_run(tmp_path / "lightning", tmp_path / "resnet32.ckpt")
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((workdir / "resources/models/cifar10-resnet32/model.json").read_text())
    assert card["classes"][3] == "cat"
    log = (workdir / "logs/model/cifar10-resnet32/describe.log").read_text()
    assert "prefix 'model.' taken off every key" in log
    torch.save({f"_orig_mod.{k}": v for k, v in published.items()}, tmp_path / "compiled.pt")
    workdir, result = card_run(tmp_path / "compiled", tmp_path / "compiled.pt")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workdir / "logs/model/cifar10-resnet32/describe.log").read_text()
    assert "prefix '_orig_mod.' taken off every key" in log

    # A torchvision ResNet-18 saved the same way: its names overlap the CIFAR ResNet's in part.
    import torchvision

    torch.save(lightning_checkpoint(torchvision.models.resnet18().state_dict()), tmp_path / "resnet18.ckpt")
    workdir, result = card_run(tmp_path / "other", tmp_path / "resnet18.ckpt")
    assert result.returncode != 0
    error = result.stderr[result.stderr.index("error: checkpoint") :]
    message = error[: error.index("the full lists are in the rule's log")]
    assert len(message.splitlines()) < 15, message
    assert "it is the checkpoint of another architecture than the one the config builds" in message
    log = (workdir / "logs/model/cifar10-resnet32/describe.log").read_text()
    assert "\nunexpected (" in log and "layer4.1.bn2.running_var" in log
