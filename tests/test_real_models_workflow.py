"""Real-model paths through the whole workflow, offline: InceptionV1 weights and an Imagenette-style
archive served over HTTP on 127.0.0.1 (download → verify → unpack → extract → atlas), and a user's
own network trained elsewhere (a published CIFAR-10 ResNet-32 checkpoint) on real photographs, configured
by a config file alone."""

import hashlib
import io
import json
import tarfile

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from activation_atlas.checking.manifest import file_entry
from activation_atlas.checking.verify import DIFFERS, IDENTICAL, WITHIN, RunFolder, check_file
from activation_atlas.checking.verify import main as verify_main
from activation_atlas.models.inceptionv1 import InceptionV1
from tools.http_server import Routes, serve
from tools.runs import REPO, copy_workflow, image_bytes, snakemake

# Every test here runs Snakemake.
pytestmark = pytest.mark.workflow

IMAGENETTE_CLASSES = ("n01440764", "n02102040", "n02979186")
# The published ResNet-32 and real CIFAR-10 photographs (tests/data/cifar10-resnet32/README.md).
REAL = REPO / "tests" / "data" / "cifar10-resnet32"


def stand_in_inception_weights() -> bytes:
    """A state dict with the published inception5h keys and shapes (random values)."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(InceptionV1().state_dict(), buffer)
    return buffer.getvalue()


def imagenette_tgz(per_class: int) -> bytes:
    """imagenette-mini/{train,val}/<wnid>/*.JPEG plus one corrupt JPEG in train."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        for label, wnid in enumerate(IMAGENETTE_CLASSES):
            for i in range(per_class):
                add(f"imagenette-mini/train/{wnid}/{wnid}_{i:04d}.JPEG", image_bytes(label, i, 80, "JPEG"))
            add(f"imagenette-mini/val/{wnid}/{wnid}_val.JPEG", image_bytes(label, 999, 80, "JPEG"))
        add(f"imagenette-mini/train/{IMAGENETTE_CLASSES[0]}/broken.JPEG", b"\xff\xd8\xff\xe0 not really a jpeg")
    return buffer.getvalue()


def docs_image_of(run: str, file: str) -> dict:
    """The manifest entry (hash and figures) of the image under docs/ that is `file` of `run`."""
    sources = yaml.safe_load((REPO / "docs" / "sources.yaml").read_text())["images"]
    name = next(name for name, source in sources.items() if source.get("run") == run and source.get("file") == file)
    return file_entry(REPO / "docs" / name, REPO / "docs")


def small_image_folder_run(run: str, model: dict, layer: str, icon_size: int) -> dict:
    """A run of a 2×2 grid of one layer of `model` on the image folder imgs/, with few, quick icons."""
    return {
        "run": run,
        "seed": 3,
        "device": "cpu",
        "threads": 2,
        "dataset": {"kind": "image_folder", "path": "imgs"},
        "model": model,
        "layers": [layer],
        "layout": {"n_neighbors": 5},
        "grid": {"sizes": [2], "min_count": 1},
        "render": {
            "icon_size": icon_size,
            "steps": 4,
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
        "montage": {"cell_px": 16},
        "metrics": {"trustworthiness_sample": 20, "trustworthiness_neighbors": 3},
        "viewer": {"enabled": False},
    }


def write_config(workdir, config) -> str:
    (workdir / "run.yaml").write_text(yaml.safe_dump(config))
    return "run.yaml"


def assert_atlases(workdir, run, layers, grids):
    for layer in layers:
        metrics = json.loads((workdir / "results" / run / "atlas" / layer / "metrics.json").read_text())
        for grid in grids:
            assert (workdir / "results" / run / "atlas" / layer / f"grid{grid}.png").stat().st_size > 100
            assert metrics["grids"][str(grid)]["cells_kept"] > 0


def test_inceptionv1_and_imagenette_by_url_end_to_end(tmp_path):
    routes = Routes()
    weights = stand_in_inception_weights()
    archive = imagenette_tgz(per_class=12)
    routes.files["/models/inception5h.pth"] = weights
    routes.files["/data/imagenette-mini.tgz"] = archive
    routes.failures["/data/imagenette-mini.tgz"] = 1  # the first request fails: retried
    workdir = copy_workflow(tmp_path / "w")
    with serve(routes) as base:
        config = {
            "run": "inception-http",
            "seed": 1,
            "device": "cpu",
            "threads": 2,
            "dataset": {
                "kind": "download",
                "name": "imagenette-mini",
                "url": f"{base}/data/imagenette-mini.tgz",
                "sha256": hashlib.sha256(archive).hexdigest(),
                "subdir": "imagenette-mini/train",
            },
            "model": {
                "kind": "inceptionv1",
                "name": "inceptionv1-standin",
                "url": f"{base}/models/inception5h.pth",
                "input_size": 96,
            },
            "layers": ["mixed3b", "mixed4a"],
            "extract": {"batch_size": 16, "attribution": True, "attribution_top_k": 2},
            "layout": {"n_neighbors": 8},
            "grid": {"sizes": [3], "min_count": 2},
            "render": {
                "icon_size": 48,
                "steps": 6,
                "attempts": 1,
                "batch_size": 8,
                "redirected_relu_steps": 3,
                "transforms": {
                    "pad": 4,
                    "jitters": [1],
                    "scale_base": 0.998,
                    "scale_exponents": [20, 39],
                    "rotation_deg": 5,
                },
            },
            "montage": {"cell_px": 24},
            "metrics": {"trustworthiness_sample": 30},
        }
        result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert routes.requests.count("/data/imagenette-mini.tgz") == 2
        pin = workdir / "resources" / "models" / "inceptionv1-standin" / "weights.pt.sha256"
        assert pin.read_text().split()[0] == hashlib.sha256(weights).hexdigest()
        card = json.loads((workdir / "resources/models/inceptionv1-standin/model.json").read_text())
        assert len(card["classes"]) == 1008 and "mixed5b" in card["layers"]
        with h5py.File(workdir / "results/inception-http/activations/mixed3b.h5", "r") as f:
            assert f.attrs["unreadable_images"] == 1 and f.attrs["images"] == 36
            assert f["activations"].shape == (36, 480)
            assert json.loads(f.attrs["classes"]) == list(IMAGENETTE_CLASSES)
            assert f["logits"].shape[1] == 1008
        assert "skipping unreadable image" in (workdir / "logs/inception-http/extract/shard0.log").read_text()
        assert_atlases(workdir, "inception-http", ["mixed3b", "mixed4a"], [3])
        with h5py.File(workdir / "results/inception-http/activations/mixed4a.h5", "r") as f:
            # Attribution to each image's 2 highest of the 1008 logits (a class atlas by a name the
            # workflow made up: the torchvision test below).
            assert f["attribution"].shape == (36, 2) and f["attribution_class"].shape == (36, 2)
            top2 = np.argsort(-f["logits"][:], axis=1, kind="stable")[:, :2]
            assert (np.sort(f["attribution_class"][:], axis=1) == np.sort(top2, axis=1)).all()


def test_an_unknown_layer_of_a_model_to_download_is_listed_before_the_download(tmp_path):
    routes = Routes()
    routes.files["/models/inception5h.pth"] = stand_in_inception_weights()
    workdir = copy_workflow(tmp_path / "w")
    (workdir / "imgs" / "a").mkdir(parents=True)
    for i in range(12):
        (workdir / "imgs" / "a" / f"{i}.png").write_bytes(image_bytes(0, i, 40, "PNG"))
    with serve(routes) as base:
        config = {
            "run": "bad-layer",
            "dataset": {"kind": "image_folder", "path": "imgs"},
            "model": {"kind": "inceptionv1", "name": "v1", "url": f"{base}/models/inception5h.pth"},
            "layers": ["mixed9z"],
        }
        result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "1")
    assert result.returncode != 0
    # InceptionV1's layers are known before running: refused before any job, nothing downloaded.
    assert (
        "config: layers[0] = 'mixed9z': inceptionv1 has no such layer; valid: conv2d0, conv2d1, conv2d2, mixed3a"
    ) in result.stderr
    assert routes.requests == []


def test_the_real_resnet32_on_real_photographs_makes_the_readmes_picture(tmp_path):
    """config/cifar10-resnet32.yaml as shipped (a published checkpoint of an older PyTorch, by URL and
    sha256; real CIFAR-10 JPEGs; class names from the folders; attribution on), served over HTTP, for
    its layer3 atlas at grid 10 and the cells of its class atlases. That atlas is the README's picture
    (docs/sources.yaml): it matches within verify's tolerance, with identical bytes on a machine like
    the one that made it."""
    checkpoint = (REAL / "resnet32-d509ac18.th").read_bytes()
    routes = Routes()
    routes.files["/pretrained_models/resnet32-d509ac18.th"] = checkpoint
    workdir = copy_workflow(tmp_path / "w")
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    assert config["model"]["sha256"] == hashlib.sha256(checkpoint).hexdigest()
    assert (REPO / config["dataset"]["path"]) == REAL / "images"
    config["dataset"]["path"] = str(REAL / "images")  # the copy of the workflow has no tests/
    with serve(routes) as base:
        config["model"]["url"] = f"{base}/pretrained_models/resnet32-d509ac18.th"
        # Each layer's and grid's atlas is made on its own: fewer of them leave this one as it is.
        config.update(
            layers=["layer3"], grid={**config["grid"], "sizes": [10]}, metrics={"trustworthiness_sample": 200}
        )
        run = workdir / "results" / "cifar10-resnet32"
        targets = [
            run / "atlas/layer3/grid10.png",
            run / "atlas/layer3/metrics.json",
            run / "class_atlas/cat/cells.h5",
            run / "class_atlas/cat_vs_dog/cells.h5",
        ]
        result = snakemake(
            workdir,
            "--configfile",
            write_config(workdir, config),
            "--cores",
            "2",
            *(str(target.relative_to(workdir)) for target in targets),
        )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = json.loads((run / "model.json").read_text())
    assert card["classes"][3] == "cat" and card["extracted_images"] == 300
    assert card["extracted_accuracy"] >= 0.85, card["extracted_accuracy"]
    assert_atlases(workdir, "cifar10-resnet32", ["layer3"], [10])
    metrics = json.loads((run / "atlas" / "layer3" / "metrics.json").read_text())
    assert metrics["model_accuracy_on_extracted_images"] == card["extracted_accuracy"]
    grid = metrics["grids"]["10"]
    assert grid["cell_top_class_by"] == "attribution" and grid["class_agreement"] >= 0.5, grid
    with h5py.File(run / "class_atlas" / "cat" / "cells.h5", "r") as f:
        assert f.attrs["class_name"] == "cat" and len(f["count"]) > 1
    with h5py.File(run / "class_atlas" / "cat_vs_dog" / "cells.h5", "r") as f:
        assert len(f["count"]) > 1
    with h5py.File(run / "activations" / "layer3.h5", "r") as f:
        assert f["attribution"].shape == (1200, 10)  # 300 images × 4 positions, every class
    describe_log = (workdir / "logs/model/cifar10-resnet32/describe.log").read_text()
    assert "naming the model's 10 logits after the dataset's class folders" in describe_log
    render_log = (workdir / "logs/cifar10-resnet32/render/layer3/grid10/chunk0.log").read_text()
    assert "31 batch norms folded into the convolutions before them" in render_log  # every one the network has
    picture = docs_image_of("cifar10-resnet32", "atlas/layer3/grid10.png")
    check = check_file(RunFolder(run), "atlas/layer3/grid10.png", picture)
    assert check.status in (IDENTICAL, WITHIN), check.details


def resnet32_offline_config(**changes) -> dict:
    """config/cifar10-resnet32.yaml from its committed checkpoint and photographs, with `changes`."""
    config = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    config["model"].update(url="", checkpoint=str(REAL / "resnet32-d509ac18.th"))
    config["dataset"]["path"] = str(REAL / "images")
    return {**config, **changes}


def test_verify_catches_a_forgotten_normalisation_and_another_layer_of_the_real_resnet32(tmp_path, capsys):
    """Deliberately wrong runs of the real ResNet-32, judged against its committed reference
    (reference/cifar10-resnet32): its photographs fed without the normalisation it was trained with
    (the model card's accuracy falls, the activations' scale moves), and a layer of the same shape that
    is not the one named (the last block but one of layer3, judged as layer3). The right layer of the
    same run reproduces."""
    reference = REPO / "reference" / "cifar10-resnet32" / "MANIFEST.json"
    expected = json.loads(reference.read_text())["files"]
    run = RunFolder(tmp_path / "w" / "results" / "cifar10-resnet32")
    workdir = copy_workflow(tmp_path / "w")
    targets = ["results/cifar10-resnet32/activations/layer3.h5", "results/cifar10-resnet32/model.json"]

    unnormalised = resnet32_offline_config(layers=["layer3"])
    del unnormalised["model"]["normalize"]
    result = snakemake(workdir, "--configfile", write_config(workdir, unnormalised), "--cores", "2", *targets)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = check_file(run, "model.json", expected["model.json"])
    assert card.status == DIFFERS and any(line.startswith("extracted_accuracy: ") for line in card.beyond), card.details
    activations = check_file(run, "activations/layer3.h5", expected["activations/layer3.h5"])
    assert activations.status == DIFFERS and any(line.startswith("rms: ") for line in activations.beyond)
    capsys.readouterr()
    assert verify_main([str(run.folder), str(reference)]) == 1
    assert capsys.readouterr().out.startswith("NOT REPRODUCED: ")

    another_layer = resnet32_offline_config(layers=["layer3", "layer3.3"])
    result = snakemake(
        workdir,
        "--configfile",
        write_config(workdir, another_layer),
        "--cores",
        "2",
        *targets,
        "results/cifar10-resnet32/activations/layer3.3.h5",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert check_file(run, "model.json", expected["model.json"]).status == IDENTICAL
    assert check_file(run, "activations/layer3.h5", expected["activations/layer3.h5"]).status in (IDENTICAL, WITHIN)
    wrong_layer = check_file(run, "activations/layer3.3.h5", expected["activations/layer3.h5"])
    assert wrong_layer.status == DIFFERS and {"mean", "rms"} <= {
        d.name for d in wrong_layer.differences if not d.within
    }


def test_a_torchvision_model_without_weights_gets_numbered_class_names_and_class_atlases(tmp_path):
    """torchvision's resnet18 (random weights: 1000 logits, no label list) on an image folder of 2
    classes, an empty class folder and a 1×1 image in each class: the logits are named class_k with a
    warning, attribution runs, and a class atlas is made by such a name (the class the model predicts
    most in the run). The empty folder and the tiny images are warned of and counted in the
    activation files, through the merge of two extraction shards."""
    workdir = copy_workflow(tmp_path / "w")
    for label, name in enumerate(("discs", "rings")):
        (workdir / "imgs" / name).mkdir(parents=True)
        for i in range(12):
            (workdir / "imgs" / name / f"{i}.png").write_bytes(image_bytes(label, i, 64, "PNG"))
        Image.new("RGB", (1, 1), (200, 10, 10)).save(workdir / "imgs" / name / "tiny.png")  # last of its class
    (workdir / "imgs" / "zempty").mkdir()
    model = {
        "kind": "torchvision",
        "name": "resnet18-random",
        "architecture": "resnet18",
        "weights": "none",
        "input_size": 64,
    }
    config = {
        **small_image_folder_run("tv", model, "layer3", 32),
        "extract": {"attribution": True, "attribution_top_k": 2, "batch_size": 8, "shards": 2},
    }
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    card = json.loads((workdir / "results/tv/model.json").read_text())
    assert card["classes"][:2] == ["class_0", "class_1"] and len(card["classes"]) == 1000
    assert card["extracted_accuracy"] is None and card["extracted_images"] == 26
    assert (
        "WARNING: the model has 1000 logits and the dataset 3 class folders"
        in (workdir / "logs/model/resnet18-random/describe.log").read_text()
    )
    for shard, tiny in ((0, "discs"), (1, "rings")):  # images 0-15 and 16-25
        log = (workdir / f"logs/tv/extract/shard{shard}.log").read_text()
        assert "warning: 1 class folder(s) of imgs hold no image: zempty" in log
        assert (
            f"warning: 1 image(s) smaller than 64 px on their shorter side were scaled up to the model's "
            f"input (the smallest: imgs/{tiny}/tiny.png, 1×1 px)" in log
        )
    with h5py.File(workdir / "results/tv/activations/layer3.h5", "r") as f:
        predicted = int(np.bincount(f["logits"][:].argmax(axis=1)).argmax())
        assert f.attrs["upscaled_images"] == 2 and f.attrs["images"] == 26
        assert json.loads(f.attrs["empty_class_folders"]) == ["zempty"]
    config["class_atlas"] = {"classes": [f"class_{predicted}"], "top_n": 10, "grid_size": 2, "min_count": 1}
    result = snakemake(workdir, "--configfile", write_config(workdir, config), "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    with h5py.File(workdir / f"results/tv/class_atlas/class_{predicted}/cells.h5", "r") as f:
        assert f.attrs["class_index"] == predicted and len(f["count"]) > 0
    assert (workdir / f"results/tv/class_atlas/class_{predicted}/atlas.png").stat().st_size > 100
