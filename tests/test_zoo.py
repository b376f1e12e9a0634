import sys

import pytest
import torch

from activation_atlas.models import (build_model, class_names, layer_names, load_checkpoint, load_model,
                                     unwrap_state_dict)
from activation_atlas.models.capture import resolve_layers
from conftest import REPO

sys.path.insert(0, str(REPO / "tests"))
USER = {"kind": "user", "factory": "user_models:cifar_resnet", "kwargs": {"width": 8}}


def test_data_parallel_checkpoint_inside_state_dict_loads(tmp_path):
    torch.manual_seed(0)
    trained = build_model(USER)
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}
    torch.save(wrapped, tmp_path / "ckpt.pt")
    model = load_model(USER, tmp_path / "ckpt.pt")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained.eval()(x))


def test_model_key_wrapper_is_unwrapped():
    state = {"weight": torch.zeros(2)}
    assert unwrap_state_dict({"model": state, "optimizer": {}}) == state
    assert unwrap_state_dict({"model": {"state_dict": state}}) == state


def test_a_mismatched_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    state = build_model(USER).state_dict()
    state.pop("fc.bias")
    state["head.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"missing keys \['fc.bias'\]; unexpected keys \['head.weight'\]"):
        load_checkpoint(build_model(USER), tmp_path / "bad.pt")


def test_a_checkpoint_without_tensors_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="holds no state dict"):
        unwrap_state_dict({"state_dict": {"a": 1}})


def test_bad_factories_are_explained():
    with pytest.raises(ValueError, match="must look like 'package.module:function'"):
        build_model({"kind": "user", "factory": "user_models.cifar_resnet"})
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        build_model({"kind": "user", "factory": "user_models:nope"})


def test_user_model_layers_are_its_module_names_and_unknown_ones_are_listed():
    model = build_model(USER)
    names = layer_names(model)
    assert "layer2" in names and "layer3.0.conv2" in names
    with pytest.raises(ValueError, match="unknown layer 'layer9'; valid layers: stem, stem.0"):
        resolve_layers(model, ["layer9"], names)


def test_torchvision_model_by_name_without_weights_takes_unit_range_input():
    cfg = {"kind": "torchvision", "architecture": "resnet18", "weights": "none"}
    model = load_model(cfg, None)
    assert "layer4" in layer_names(model)
    raw = build_model(cfg)
    raw.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), raw.eval()((x - mean) / std), atol=1e-4, rtol=1e-4)


def test_unknown_torchvision_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet51'; valid: .*resnet50"):
        build_model({"kind": "torchvision", "architecture": "resnet51", "weights": "none"})
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET9' for resnet18; valid: DEFAULT, IMAGENET1K_V1"):
        build_model({"kind": "torchvision", "architecture": "resnet18", "weights": "IMAGENET9"})


def test_class_names_by_model_kind():
    names = class_names({"kind": "inceptionv1"}, [])
    assert len(names) == 1008 and names[0] == "dummy" and names[1] == "kit fox"
    assert class_names(USER, ["a", "b"]) == ["a", "b"]
