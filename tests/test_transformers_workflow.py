"""Atlases of layers that are not (B, C, H, W) maps, through the workflow: a ViT block's patch tokens, a
Swin block's channels-last map, and a ConvNeXt stage, of torchvision's models with random weights, and a
block of timm's ViT with weights from a checkpoint file, on a small image folder. Each layer's grid is
decided from a probe pass and recorded in the model card; the activations are sampled on the patch grid
and the icons read its centre patch. These are slow tests (about a minute each): in the suite, the demo
ViT's blocks go through every stage in the aligned CI run (test_aligned), test_grids checks the grids of
these models and test_zoo builds and loads timm's."""

import json

import h5py
import pytest
import torch
from test_real_models_workflow import assert_atlases, image_bytes, small_image_folder_run, write_config

from tools.runs import REPO, copy_workflow, snakemake

# Every test here runs Snakemake.
pytestmark = pytest.mark.workflow

MODELS = [
    # (kind, architecture, kwargs, layer, its grid in the card (None: a map), its grid's side at 64 px)
    pytest.param(
        "torchvision",
        "vit_b_16",
        {"image_size": 64},
        "encoder.layers.encoder_layer_2",
        "tokens(prefix=1)",
        4,
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "timm",
        "vit_tiny_patch16_224",
        {"img_size": 64, "num_classes": 2},
        "blocks.3",
        "tokens(prefix=1)",
        4,
        marks=pytest.mark.slow,
    ),
    pytest.param("torchvision", "swin_t", {}, "features.3.1", "channels_last", 8, marks=pytest.mark.slow),
    pytest.param("torchvision", "convnext_tiny", {}, "features.3.0", None, 8, marks=pytest.mark.slow),
]


def model_section(kind: str, architecture: str, kwargs: dict, workdir) -> dict:
    """torchvision: random weights; timm: weights from a checkpoint of the model's own random
    initialisation, seeded (the path of a researcher's own fine-tuned timm model)."""
    section = {"kind": kind, "name": architecture, "architecture": architecture, "kwargs": kwargs, "input_size": 64}
    if kind == "torchvision":
        return {**section, "weights": "none"}
    import timm

    torch.manual_seed(0)
    torch.save(timm.create_model(architecture, pretrained=False, **kwargs).state_dict(), workdir / "timm.pt")
    return {**section, "checkpoint": "timm.pt"}


@pytest.mark.parametrize(
    "kind, architecture, kwargs, layer, grid, side",
    MODELS,
    ids=["vit_b_16", "timm_vit_tiny", "swin_t", "convnext_tiny"],
)
def test_a_transformer_layer_makes_an_atlas_through_the_workflow(
    tmp_path, kind, architecture, kwargs, layer, grid, side
):
    workdir = copy_workflow(tmp_path / "w")
    for label, name in enumerate(("discs", "rings")):
        (workdir / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            (workdir / "imgs" / name / f"{i}.png").write_bytes(image_bytes(label, i, 64, "PNG"))
    model = model_section(kind, architecture, kwargs, workdir)
    # A ViT takes only images of its image_size: the icons are made at it.
    config = {
        **small_image_folder_run("tf", model, layer, icon_size=64),
        "extract": {"positions_per_image": 2, "exclude_edge": 1},
    }
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = json.loads((workdir / "results/tf/model.json").read_text())
    assert card.get("layer_grids", {}).get(layer) == grid
    with h5py.File(workdir / f"results/tf/activations/{layer}.h5", "r") as f:
        assert f.attrs["spatial_size"].tolist() == [side, side]
        assert f["activations"].shape[0] == 40
        position = f["position"][:]
    assert ((position >= 1) & (position <= side - 2)).all()  # edge exclusion in patches
    assert_atlases(workdir, "tf", [layer], [2])


def class_token_vit_run() -> dict:
    """A small ViT whose head reads its class token, trained by the workflow on the generated dataset;
    an atlas of its last block."""
    return {
        "run": "cls-attributed",
        "seed": 5,
        "device": "cpu",
        "threads": 2,
        "dataset": {
            "kind": "generated",
            "name": "shapes32-cls",
            "image_size": 32,
            "train_per_class": 80,
            "held_out_per_class": 10,
        },
        "model": {
            "kind": "demo_vit",
            "name": "vit-cls",
            "input_size": 32,
            "vit": {"patch_size": 8, "depth": 2, "heads": 2, "width": 32, "mlp_width": 64, "readout": "class_token"},
            "train": {"epochs": 15, "batch_size": 32, "lr": 0.003},
        },
        "layers": ["encoder.layers.encoder_layer_1"],
        "extract": {"positions_per_image": 1, "exclude_edge": 0, "batch_size": 64, "attribution": True},
        "layout": {"n_neighbors": 10},
        "grid": {"sizes": [3], "min_count": 2},
        "render": {
            "icon_size": 32,
            "steps": 64,
            "attempts": 1,
            "batch_size": 8,
            "transforms": {
                "pad": 2,
                "jitters": [1],
                "scale_base": 0.998,
                "scale_exponents": [20, 39],
                "rotation_deg": 5,
            },
        },
    }


def test_a_class_token_vits_last_block_is_an_atlas_of_its_class_token_or_a_one_line_stop(tmp_path):
    workdir = copy_workflow(tmp_path / "w")
    layer, cls = "encoder.layers.encoder_layer_1", "red_checks_disc"
    config = {
        **class_token_vit_run(),
        "class_atlas": {"layer": layer, "classes": [cls], "top_n": 40, "grid_size": 3, "min_count": 1},
    }
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = json.loads((workdir / "results/cls-attributed/model.json").read_text())
    assert card["layer_grids"] == {layer: "class_token"}
    # Read only through the final LayerNorm, the class token is attributed at that norm's output.
    assert card["attributed_at"] == {layer: "encoder.ln"}
    describe = (workdir / "logs/model/vit-cls/describe.log").read_text()
    assert "the logits do not read its patch tokens, only its class token" in describe
    assert f"layer {layer}: the logits read it only through encoder.ln" in describe
    with h5py.File(workdir / f"results/cls-attributed/activations/{layer}.h5", "r") as f:
        assert f.attrs["spatial_size"].tolist() == [1, 1]
        assert f.attrs["attribution"] == (
            "all classes, at the output of encoder.ln less its bias, each position's "
            "share with the norm's scale held (the norm the logits read the layer "
            "through)"
        )
    grid = json.loads((workdir / f"results/cls-attributed/atlas/{layer}/metrics.json").read_text())["grids"]["3"]
    assert grid["cells_kept"] > 1 and 0.4 <= grid["class_agreement"] <= 1.0
    # The class atlas is made of the class's own photographs, mostly (the model classifies 0.95 of them right).
    with h5py.File(workdir / f"results/cls-attributed/class_atlas/{cls}/cells.h5", "r") as f:
        composition = f["class_histogram"][:].sum(axis=0)
        assert composition[f.attrs["class_index"]] >= 0.8 * composition.sum(), composition

    # Its patches read as patches, with attribution: every attribution is zero, so the run stops at extraction,
    # in one line, before any cell is made.
    patches = {**class_token_vit_run(), "run": "cls-patches"}
    patches["model"] = {**patches["model"], "layer_grids": {layer: "tokens(prefix=1)"}}
    result = snakemake(workdir, "--configfile", write_config(workdir, patches), "--cores", "2")
    assert result.returncode != 0
    stop = next(line for line in result.stderr.splitlines() if "error: extract.attribution:" in line)
    assert f"layer '{layer}' (read as tokens(prefix=1)) has attribution at most 0 " in stop
    assert f"model.layer_grids: {{{layer}: class_token}}" in stop
    assert not (workdir / "results/cls-patches/cells").exists()


def lightning_vit_pytorch_layout(workdir, pool: str) -> str:
    """examples/vit_pytorch_layout.py (the layout of vit-pytorch's ViT: its head slices or pools the last
    block before its LayerNorm) trained here on the generated dataset's train split (workdir/shapes), saved
    as a LightningModule in the style of the UvA deep-learning tutorials saves it: weights under `model.`,
    the network's arguments one dict below hyper_parameters, in `model_hparams`."""
    from activation_atlas.data.generated import generate_dataset
    from activation_atlas.data.image_folder import load_all, scan_image_folder
    from activation_atlas.models.loading import build_model
    from activation_atlas.models.training import train_classifier

    if not (workdir / "shapes").exists():
        generate_dataset(workdir / "shapes", seed=5, image_size=32, images_per_class={"train": 80})
    folder = scan_image_folder(workdir / "shapes" / "train")
    hparams = {
        "image_size": 32,
        "patch_size": 8,
        "num_classes": len(folder.classes),
        "dim": 32,
        "depth": 2,
        "heads": 2,
        "mlp_dim": 64,
        "pool": pool,
    }
    torch.manual_seed(0)
    model = build_model(
        {
            "kind": "user",
            "factory": "vit_pytorch_layout:vit",
            "python_path": [str(REPO / "examples")],
            "kwargs": hparams,
        }
    )
    train_classifier(
        model,
        load_all(folder, 32),
        torch.from_numpy(folder.labels),
        epochs=40,
        batch_size=32,
        lr=0.006,
        seed=0,
        log=lambda _: None,
    )
    name = f"vit-{pool}.ckpt"
    torch.save(
        {
            "epoch": 39,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {
                "model_name": "ViT",
                "model_hparams": hparams,
                "optimizer_name": "Adam",
                "optimizer_hparams": {"lr": 0.006},
            },
        },
        workdir / name,
    )
    return name


@pytest.mark.parametrize(
    "pool, grid, takes",
    [("cls", "class_token", "its class token"), ("mean", "tokens(prefix=1)", "all its tokens, pooled")],
)
def test_the_last_block_of_a_vit_whose_head_slices_or_pools_before_its_norm_makes_class_atlases(
    tmp_path, pool, grid, takes
):
    workdir = copy_workflow(tmp_path / "w")
    layer, cls, other = "transformer", "red_checks_disc", "red_dots_square"
    config = {
        **class_token_vit_run(),
        "run": f"vitp-{pool}",
        "dataset": {"kind": "image_folder", "name": "shapes32", "path": "shapes/train"},
        "model": {
            "kind": "user",
            "name": f"vitp-{pool}",
            "factory": "vit_pytorch_layout:vit",
            "python_path": [str(REPO / "examples")],
            "checkpoint": lightning_vit_pytorch_layout(workdir, pool),
            "kwargs_from_checkpoint": True,
            "input_size": 32,
        },
        "layers": [layer],
        "class_atlas": {
            "layer": layer,
            "classes": [cls],
            "comparisons": [[cls, other]],
            "top_n": 40,
            "grid_size": 3,
            "min_count": 1,
        },
        "viewer": {"enabled": False},
    }
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    run = workdir / "results" / f"vitp-{pool}"
    card = json.loads((run / "model.json").read_text())
    assert card["layer_grids"] == {layer: grid} and card["attributed_at"] == {layer: "mlp_head.0"}
    describe = (workdir / f"logs/model/vitp-{pool}/describe.log").read_text()
    assert (
        f"model.kwargs_from_checkpoint: depth=2, dim=32, heads=2, image_size=32, mlp_dim=64, num_classes=10, "
        f"patch_size=8, pool='{pool}' from hyper_parameters.model_hparams; the rest of hyper_parameters, not read: "
        f"model_name, optimizer_hparams, optimizer_name"
    ) in describe
    assert (
        f"layer {layer}: the logits read it only through mlp_head.0, a norm blind to its input's scale that "
        f"takes {takes}" in describe
    )
    with h5py.File(run / f"activations/{layer}.h5", "r") as f:
        assert "at the output of mlp_head.0 less its bias" in f.attrs["attribution"]
    # The cells' classes are read from their attributions; the icons' from the model. A class token is one
    # vector an image: most of its cells agree with their icons (4 to 6 of 7 on the CPUs this has run on, where
    # the network trains to other weights); patch tokens, each a part of an image, less.
    grid3 = json.loads((run / f"atlas/{layer}/metrics.json").read_text())["grids"]["3"]
    assert grid3["cell_top_class_by"] == "attribution"
    assert grid3["class_agreement"] >= (0.5 if pool == "cls" else 0.2), grid3
    # The class atlas, of the activations most attributed to the class, is mostly of its images (0.82 for the class
    # token, 0.51 for patches, of 10 classes).
    with h5py.File(run / f"class_atlas/{cls}/cells.h5", "r") as f:
        composition = f["class_histogram"][:].sum(axis=0)
        assert composition[f.attrs["class_index"]] >= (0.6 if pool == "cls" else 0.35) * composition.sum(), composition
    assert (run / f"class_atlas/{cls}_vs_{other}/atlas.png").stat().st_size > 100
