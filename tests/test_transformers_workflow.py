"""Atlases of layers that are not (B, C, H, W) maps, through the workflow: a ViT block's patch tokens, a
Swin block's channels-last map, and a ConvNeXt stage, of torchvision's models with random weights on a
small image folder. Each layer's grid is decided from a probe pass and recorded in the model card; the
activations are sampled on the patch grid and the icons read its centre patch. The ViT runs in the
suite; Swin and ConvNeXt, whose grids test_grids checks on the same models, are slow tests (a minute
each)."""
import json

import h5py
import pytest

from conftest import copy_workflow, snakemake
from test_real_models_workflow import assert_atlases, image_bytes, small_image_folder_run, write_config

MODELS = [
    # (architecture, kwargs, layer, its grid in the card (None: a map), its grid's side at 64 px)
    ("vit_b_16", {"image_size": 64}, "encoder.layers.encoder_layer_2", "tokens(prefix=1)", 4),
    pytest.param("swin_t", {}, "features.3.1", "channels_last", 8, marks=pytest.mark.slow),
    pytest.param("convnext_tiny", {}, "features.3.0", None, 8, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("architecture, kwargs, layer, grid, side", MODELS, ids=["vit_b_16", "swin_t", "convnext_tiny"])
def test_a_transformer_layer_makes_an_atlas_through_the_workflow(tmp_path, architecture, kwargs, layer, grid, side):
    workdir = copy_workflow(tmp_path / "w")
    for label, name in enumerate(("discs", "rings")):
        (workdir / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            (workdir / "imgs" / name / f"{i}.png").write_bytes(image_bytes(label, i, 64, "PNG"))
    model = {"kind": "torchvision", "name": architecture, "architecture": architecture, "weights": "none",
             "kwargs": kwargs, "input_size": 64}
    # A ViT takes only images of its image_size: the icons are made at it.
    config = {**small_image_folder_run("tf", model, layer, icon_size=64),
              "extract": {"positions_per_image": 2, "exclude_edge": 1}}
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = json.loads((workdir / "results/tf/model.json").read_text())
    assert card.get("layer_grids", {}).get(layer) == grid
    with h5py.File(workdir / f"results/tf/activations/{layer}.h5", "r") as f:
        assert f.attrs["spatial_size"].tolist() == [side, side]
        assert f["activations"].shape[0] == 40
        position = f["position"][:]
    assert ((position >= 1) & (position <= side - 2)).all()    # edge exclusion in patches
    assert_atlases(workdir, "tf", [layer], [2])
