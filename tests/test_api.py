"""The Python API: the package imports light; a network held only in memory gets its atlas, class
atlas and comparison; a call's bad input is said in one line; and a run of config/ci.yaml's settings
through the API writes the bytes the workflow's run of it writes."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import activation_atlas as aa
from tools.runs import REPO


def example_module(name: str):
    """A module of examples/ (not a package), imported from its file."""
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resnet32 = example_module("cifar_resnet").resnet32

PHOTOS = REPO / "tests/data/cifar10-resnet32/images"
CHECKPOINT = REPO / "tests/data/cifar10-resnet32/resnet32-d509ac18.th"
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(autouse=True)
def torch_as_it_was():
    """An API call configures torch as a job does (deterministic mode, threads, CUBLAS_WORKSPACE_CONFIG in
    the environment): put back after each test, so that the Snakemake runs of later tests inherit the
    environment they would have had (their provenance records it)."""
    environment, deterministic, threads = (
        dict(os.environ),
        torch.are_deterministic_algorithms_enabled(),
        torch.get_num_threads(),
    )
    yield
    os.environ.clear()
    os.environ.update(environment)
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


def published_resnet32():
    """The published CIFAR-10 ResNet-32, built and loaded here, never saved."""
    net = resnet32()
    state = torch.load(CHECKPOINT, map_location="cpu")["state_dict"]
    net.load_state_dict({key.removeprefix("module."): value for key, value in state.items()})
    return net


def test_importing_the_package_loads_neither_torch_nor_umap():
    code = "import activation_atlas, sys; assert not {'torch', 'umap'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_stays_itself_once_the_package_s_modules_are_imported():
    # A subpackage named like a public name would replace it on import (aa.viewer once was the viewer's
    # page module after the first page was written).
    code = (
        "import importlib, pkgutil, activation_atlas as aa\n"
        "before = {name: getattr(aa, name) for name in aa.EXPORTS}\n"
        "for module in pkgutil.iter_modules(aa.__path__):\n"
        "    importlib.import_module(f'activation_atlas.{module.name}')\n"
        "changed = [name for name in aa.EXPORTS if getattr(aa, name) is not before[name]]\n"
        "assert not changed, changed"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_network_held_only_in_memory_gets_its_atlas_class_atlas_and_comparison(tmp_path):
    net = published_resnet32()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    model = aa.Model(net, input_size=32, resize="resize", normalize=IMAGENET)
    acts = aa.extract(model, "layer3", PHOTOS, attribution=True, seed=3, out=tmp_path / "mine", progress_bar=False)
    assert acts.card["extracted_accuracy"] > 0.85  # it sees the photographs as it was trained to
    assert acts.vectors("layer3").shape == (300, 64)
    render = {"steps": 16, "icon_size": 32}
    atlas = aa.atlas(net, "layer3", acts, grid=4, render=render, progress_bar=False)
    figures = atlas.metrics["grids"]["4"]
    assert figures["cells_kept"] > 4 and figures["mean_icon_fidelity"] > 0.5
    assert atlas._repr_png_().startswith(b"\x89PNG") and atlas.image().size[0] > 0
    assert "mean icon fidelity" in atlas._repr_html_()
    cat = aa.class_atlas(model, "layer3", acts, "cat", grid=3, render=render, progress_bar=False)
    versus = aa.comparison(model, "layer3", acts, "cat", "dog", grid=3, render=render, progress_bar=False)
    for made in (cat, versus):
        assert made.metrics["cells_kept"] > 0 and made.image_path().is_file()
        assert "mean icon fidelity" in made._repr_html_()
    # The network handed over is left as it was: no hook, its weights and its mode.
    assert all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    assert not net._forward_pre_hooks and net.training
    saved = atlas.save(tmp_path / "saved")
    assert (saved / "icons/layer3/grid4.h5").read_bytes() == (tmp_path / "mine/icons/layer3/grid4.h5").read_bytes()
    assert (saved / "class_atlas/cat_vs_dog/atlas.png").is_file()


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda net: aa.extract(net, ["layer9"], torch.rand(2, 3, 32, 32), progress_bar=False),
            "unknown layer(s) 'layer9'; nearest valid layers: layer3, layer2, layer1,",
        ),
        (
            lambda net: aa.extract(
                aa.Model(net, input_size=32), ["layer3"], torch.rand(2, 3, 28, 28), progress_bar=False
            ),
            "the images are of shape (2, 3, 28, 28); the model takes (N, 3, 32, 32)",
        ),
        (
            lambda net: aa.extract(net, ["layer3"], np.zeros((2, 3, 32, 32)), progress_bar=False),
            "images is a ndarray: give a folder, a tensor (N, 3, H, W), a torch Dataset or a DataLoader",
        ),
        (
            lambda net: aa.extract(net, ["layer3"], PHOTOS, positions_per_image=0, progress_bar=False),
            "extract.positions_per_image = 0:",
        ),
        (
            lambda net: aa.extract(net, ["layer3"], PHOTOS / "nowhere", progress_bar=False),
            f"images: {PHOTOS / 'nowhere'} does not exist",
        ),
    ],
)
def test_a_bad_call_is_one_line_saying_what_is_wrong(call, message):
    with pytest.raises(aa.RunError) as raised:
        call(resnet32())
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value), str(raised.value)


CI_THROUGH_THE_API = """
import activation_atlas as aa
model = aa.Model.from_config("config/ci.yaml")
acts = aa.extract(model, config="config/ci.yaml", out={out!r}, progress_bar=False)
for layer in acts.layers:
    aa.atlas(model, layer, acts, progress_bar=False)
aa.class_atlas(model, "conv3", acts, 4, progress_bar=False)
aa.comparison(model, "conv3", acts, "red_checks_disc", "red_dots_square", progress_bar=False)
"""


@pytest.mark.workflow
def test_the_api_run_of_the_ci_config_writes_the_bytes_of_the_workflows_run(first_run, tmp_path):
    out = tmp_path / "ci"
    code = textwrap.dedent(CI_THROUGH_THE_API.format(out=str(out)))
    subprocess.run([sys.executable, "-c", code], cwd=first_run, check=True)
    made = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    # Every file of the run's atlases: activations to metrics, the class atlas and comparison, the spectrum.
    stages = {Path(name).parts[0] for name in made}
    assert stages == {"activations", "layout", "cells", "icons", "atlas", "class_atlas", "spectrum", "model.json"}
    assert {"atlas/conv3/metrics.json", "atlas/conv3/grid6.png", "class_atlas/4/icons.h5"} <= set(made)
    differ = [name for name in made if (out / name).read_bytes() != (first_run / "results/ci" / name).read_bytes()]
    assert not differ and len(made) > 60, (differ, len(made))


def test_a_folder_a_dataset_a_dataloader_and_a_tensor_of_the_same_images_give_the_same_activations(tmp_path):
    """The committed photographs are 32 px, so every source reads the same pixels: as the workflow reads a
    folder, as torchvision's ImageFolder gives them (with their labels), batched by a DataLoader, and
    stacked in a tensor with labels and class names."""
    from torchvision import datasets, transforms

    model = aa.Model(published_resnet32(), input_size=32, resize="resize", normalize=IMAGENET)
    folder = datasets.ImageFolder(PHOTOS, transform=transforms.ToTensor())
    images = torch.stack([image for image, _ in folder])
    labels = [label for _, label in folder]
    sources = {
        "folder": PHOTOS,
        "dataset": folder,
        "loader": torch.utils.data.DataLoader(folder, batch_size=7),
        "tensor": images,
    }
    read = {}
    for name, source in sources.items():
        given = {"labels": labels, "classes": folder.classes} if name == "tensor" else {}
        acts = aa.extract(model, "layer2", source, seed=1, out=tmp_path / name, progress_bar=False, **given)
        read[name] = acts.vectors("layer2")
        assert acts.card["extracted_accuracy"] > 0.85, name  # labels and class names came with the images
    for name in ("dataset", "loader", "tensor"):
        assert np.array_equal(read[name], read["folder"]), name
