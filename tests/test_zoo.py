import hashlib
import os
import pickle
import re

import pytest
import torch
import yaml

from activation_atlas.models.capture import layer_names, resolve_layers
from activation_atlas.models.checkpoint import load_checkpoint, weights_entry
from activation_atlas.models.kinds.torchvision import check_published_hash, forced_weights_only
from activation_atlas.models.labels import logit_names
from activation_atlas.models.loading import build_model, load_model
from activation_atlas.runtime import RunError
from tools.runs import REPO, validated

# The example user model at its smallest depth (one block a stage), made importable as a user's is.
EXAMPLES = [str(REPO / "examples")]
USER = {"kind": "user", "factory": "cifar_resnet:resnet", "kwargs": {"depth": 8}, "python_path": EXAMPLES}


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
    assert weights_entry({"model": state, "optimizer": {}}) == (state, ["model"])
    assert weights_entry({"model": {"state_dict": state}}) == (state, ["model", "state_dict"])


def test_a_checkpoint_that_does_not_fit_lists_missing_unexpected_and_wrong_shape_keys(tmp_path):
    state = build_model(USER).state_dict()
    state.pop("linear.bias")
    state["head.weight"] = torch.zeros(1)
    state["linear.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(
        ValueError,
        match=r"missing \(1\): linear.bias\n  unexpected \(1\): head.weight\n  "
        r"other shape \(1\): linear.weight \(3, 3\) ≠ model \(10, 64\)\n",
    ):
        load_checkpoint(build_model(USER), tmp_path / "bad.pt")


def test_a_state_dict_without_batch_norm_counters_loads_as_torch_loads_it(tmp_path):
    """Batch norms saved before num_batches_tracked existed: torch's strict load accepts them."""
    torch.manual_seed(1)
    trained = build_model(USER)
    old = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pt")
    model = build_model(USER)
    load_checkpoint(model, tmp_path / "old.pt")
    torch.testing.assert_close(model.state_dict()["linear.weight"], trained.state_dict()["linear.weight"])
    # Without the version metadata, torch still refuses a missing weight: so does the loader.
    del old["bn1.weight"]
    torch.save(old, tmp_path / "older.pt")
    with pytest.raises(ValueError, match=r"\(1 key of the model's 44 missing;.*\n  missing \(1\): bn1.weight\n"):
        load_checkpoint(build_model(USER), tmp_path / "older.pt")


def test_a_safetensors_checkpoint_loads_whatever_its_name(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(2)
    trained = build_model(USER)
    save_file(trained.state_dict(), str(tmp_path / "weights.pt"))  # the name the download rule gives it
    model = load_model(USER, tmp_path / "weights.pt")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained.eval()(x))


def test_a_pickled_whole_model_is_refused_with_how_to_save_a_state_dict(tmp_path):
    torch.save(build_model(USER), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"a whole model.*torch.save\(model.state_dict\(\), path\)"):
        load_checkpoint(build_model(USER), tmp_path / "whole.pt")


def test_a_checkpoint_without_tensors_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="holds no state dict"):
        weights_entry({"state_dict": {"a": 1}})


def test_bad_factories_are_explained():
    with pytest.raises(ValueError, match="must look like 'package.module:function'"):
        build_model({"kind": "user", "factory": "cifar_resnet.resnet", "python_path": EXAMPLES})
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        build_model({"kind": "user", "factory": "cifar_resnet:nope", "python_path": EXAMPLES})


def test_user_model_layers_are_its_module_names_and_an_unknown_one_is_answered_with_the_nearest():
    model = build_model(USER)
    names = layer_names(model)
    assert "layer2" in names and "layer3.0.conv2" in names
    # 21 layers: the nearest five names, by similarity.
    with pytest.raises(ValueError, match=r"unknown layer 'layer9'; nearest valid layers: layer3, layer2, layer1, "):
        resolve_layers(model, ["layer9"], names)
    with pytest.raises(
        ValueError, match=r"'layer3\.0\.conv9'; nearest valid layers: layer3\.0\.conv2, layer3\.0\.conv1, "
    ):
        resolve_layers(model, ["layer3.0.conv9"], names)


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


def test_a_timm_model_loads_its_checkpoint_and_takes_its_pretrained_configs_normalisation(tmp_path):
    """timm's ViT-Ti with a checkpoint of other weights than its own initialisation: the loaded model
    gives the checkpoint's logits for [0, 1] input, normalised with timm's mean and std (0.5, 0.5)."""
    import timm

    kwargs = {"img_size": 32, "num_classes": 3}
    torch.manual_seed(1)
    trained = timm.create_model("vit_tiny_patch16_224", **kwargs).eval()
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "vit.pt")
    model = load_model({"kind": "timm", "architecture": "vit_tiny_patch16_224", "kwargs": kwargs}, tmp_path / "vit.pt")
    assert "blocks.11" in layer_names(model)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained((x - 0.5) / 0.5), atol=1e-5, rtol=1e-5)


def test_timm_names_and_arguments_it_refuses_are_one_line_errors():
    with pytest.raises(
        RunError,
        match=r"^unknown timm model 'vit_tiny_patch17_224'; timm has \d+ models "
        r"\(timm.list_models\(\)\), the closest: vit_tiny_patch16_224, ",
    ):
        build_model({"kind": "timm", "architecture": "vit_tiny_patch17_224"})
    with pytest.raises(RunError, match=r"^model.kwargs = \{'depht': 3\}: timm's vit_tiny_patch16_224 refuses them: "):
        build_model({"kind": "timm", "architecture": "vit_tiny_patch16_224", "kwargs": {"depht": 3}})


def test_published_torchvision_weights_altered_in_the_cache_are_refused_not_loaded(tmp_path, monkeypatch):
    """resnet18's IMAGENET1K_V1 file in $TORCH_HOME replaced by other bytes: refused, naming the file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(build_model({"kind": "torchvision", "architecture": "resnet18", "weights": "none"}).state_dict(), cached)
    with pytest.raises(
        RunError,
        match=rf"^{cached} does not have the sha256 published in its name \(f37072fd…, "
        r"it has [0-9a-f]{8}…\): it was altered or damaged; delete it",
    ):
        build_model({"kind": "torchvision", "architecture": "resnet18", "weights": "IMAGENET1K_V1"})


def test_a_weights_file_whose_bytes_have_its_published_hash_passes(tmp_path):
    payload = b"published weights"
    path = tmp_path / f"net-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    path.write_bytes(payload)
    check_published_hash(path)
    path.write_bytes(payload + b"!")
    with pytest.raises(RunError, match="does not have the sha256 published in its name"):
        check_published_hash(path)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_hub_loads_are_tensors_only_even_where_the_caller_asks_for_more(tmp_path):
    """torch.hub passes weights_only=False; forced_weights_only makes torch.load refuse other objects."""
    path = tmp_path / "model.pth"
    torch.save({"w": torch.ones(2), "code": Payload()}, path)
    with forced_weights_only(), pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=False)
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


def test_logit_names_by_model_kind(tmp_path):
    logged = []
    names = logit_names({"kind": "inceptionv1"}, 1008, [], logged.append)
    assert len(names) == 1008 and names[0] == "dummy" and names[1] == "kit fox"
    assert logit_names(USER, 2, ["a", "b"], logged.append) == ["a", "b"]
    assert "after the dataset's class folders" in logged[-1]
    (tmp_path / "labels.txt").write_text("left\nright\n")
    assert logit_names({**USER, "labels": str(tmp_path / "labels.txt")}, 2, [], logged.append) == ["left", "right"]
    assert logit_names({**USER, "labels": ["x", "y"]}, 2, ["a", "b"], logged.append) == ["x", "y"]
    with pytest.raises(ValueError, match="model.labels names 2 classes, but the model has 3 logits"):
        logit_names({**USER, "labels": ["x", "y"]}, 3, [], logged.append)


def test_a_user_model_with_other_logits_than_dataset_classes_gets_numbered_names_and_a_warning():
    logged = []
    names = logit_names(USER, 4, ["a", "b", "c"], logged.append)
    assert names == ["class_0", "class_1", "class_2", "class_3"]
    assert logged == [
        "WARNING: the model has 4 logits and the dataset 3 class folders, so the logits are named "
        "class_0 … class_3: name them with model.labels (a list of names, a text file with "
        "one name a line, or imagenet1k for an ImageNet-1k classifier)"
    ]


def test_describe_model_names_a_user_models_logits_class_k_when_the_folders_do_not_fit(tmp_path):
    """Through the describe_model stage: 4 logits, 3 class folders → class_0..class_3 and the warning."""
    import json

    import numpy as np
    from PIL import Image

    from activation_atlas.stages.model import Description, describe_model

    for name in ("a", "b", "c"):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / name / "0.png")
    cfg = {**USER, "kwargs": {"depth": 8, "num_classes": 4}, "name": "m", "labels": None, "normalize": None}
    logged = []
    describe_model(
        None,
        tmp_path / "model.json",
        Description(
            model=cfg,
            layers=["layer3"],
            input_size=32,
            images={
                "folder": str(tmp_path / "images"),
                "layout": "class_folders",
                "max_images": None,
                "stratified": False,
            },
        ),
        logged.append,
    )
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["classes"] == ["class_0", "class_1", "class_2", "class_3"]
    assert any(line.startswith("WARNING: the model has 4 logits and the dataset 3 class folders") for line in logged)


def readme_clip_recipe() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "transformers.md").read_text(), flags=re.S)
    return yaml.safe_load(next(block for block in blocks if "clip_zero_shot" in block))


def test_the_readmes_clip_recipe_gives_zero_shot_logits_and_token_blocks(monkeypatch):
    """The CLIP recipe of docs/transformers.md passes the config check; built as it says, with random weights (nothing
    is fetched) at 64 px: one logit per class name, and the image tower's blocks it names read as a class
    token and a patch grid."""
    from activation_atlas.models.grids import decide_layer_grids

    monkeypatch.chdir(REPO)
    recipe = readme_clip_recipe()
    checked = validated(recipe)
    model_cfg = {**checked["model"], "kwargs": {**checked["model"]["kwargs"], "pretrained": None, "image_size": 64}}
    model = load_model(model_cfg, None)
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, len(recipe["model"]["labels"])) and torch.isfinite(logits).all()
    grids = decide_layer_grids(model, resolve_layers(model, recipe["layers"], layer_names(model)), 64, {})
    # CLIP's head reads the class token: its last block is read as that token, an earlier one as its patches.
    assert grids == {
        "visual.transformer.resblocks.8": "tokens(prefix=1)",
        "visual.transformer.resblocks.11": "class_token",
    }
