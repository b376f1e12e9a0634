"""The layout, binning, montage and metrics rules run in envs/layout.yaml, which has no torch: their
stages must work with torch absent. Run in a fresh interpreter where importing torch fails."""

import importlib.metadata
import re
import subprocess
import sys
import textwrap

import yaml

from tools import lock
from tools.runs import REPO

STAGES_WITHOUT_TORCH = textwrap.dedent("""
    import sys

    class NoTorch:   # an import hook under which torch is simply not installed
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {{name!r}}")

    sys.meta_path.insert(0, NoTorch())
    from pathlib import Path
    import numpy as np, h5py
    from activation_atlas.h5io import create_h5, write_dataset
    from activation_atlas.formats.cells import read_cells
    from activation_atlas.formats.model_card import write_card
    from activation_atlas.runtime import ProgressLog
    from activation_atlas.stages.atlas import Metrics, Montage, atlas_metrics, montage
    from activation_atlas.stages.cells import Binning, bin_cells
    from activation_atlas.stages.class_atlas import Selection, class_cells
    from activation_atlas.stages.layout import Layout, layout

    out = Path({out!r})
    rng = np.random.default_rng(0)
    config = {config!r}
    umap = {{k: v for k, v in config["layout"].items() if k not in ("per_layer", "scatter_size")}}
    labels = np.repeat(np.arange(3), 40)
    acts = (rng.normal(size=(120, 8)) + labels[:, None] * 4).astype(np.float32)
    with create_h5(out / "acts.h5", "activations", layer="conv2", classes=["a", "b", "c"]) as f:
        write_dataset(f, "activations", acts, "activation", "row, channel")
        write_dataset(f, "label", labels, "class index", "row")
        write_dataset(f, "image_index", np.arange(120), "image", "row")
        write_dataset(f, "attribution", acts[:, :3], "logit", "row, class")
    log = ProgressLog(None)
    layout(out / "acts.h5", out / "layout.h5", out / "layout.png", Layout(0, "conv2", umap, 200), log)
    write_card(out / "model.json", {{"model": "m", "kind": "user", "classes": ["a", "b", "c"], "layers": ["conv2"],
                                     "held_out_accuracy": 1.0}})
    bin_cells(out / "acts.h5", out / "layout.h5", out / "model.json", out / "cells.h5",
              Binning(0, "conv2", 4, config["grid"]), log)
    class_cells(out / "acts.h5", out / "model.json", out / "class_layout.h5", out / "class_layout.png",
                out / "class_cells.h5", Selection(0, "conv2", ["a", "b"], umap, 200, 2, config["class_atlas"]), log)
    cells = read_cells(out / "cells.h5")
    with create_h5(out / "icons.h5", "icons", layer="conv2", grid_size=4) as f:
        write_dataset(f, "row", cells.row, "cell", "icon")
        write_dataset(f, "col", cells.col, "cell", "icon")
        write_dataset(f, "icons", np.zeros((len(cells.row), 8, 8, 3), np.uint8), "uint8 RGB", "icon")
        write_dataset(f, "fidelity", np.ones(len(cells.row), np.float32), "cosine", "icon")
        write_dataset(f, "icon_class", np.zeros(len(cells.row), np.int32), "class index", "icon")
    montage(out / "icons.h5", out / "cells.h5", out / "atlas.png", out / "tiles", Montage(**config["montage"]), log)
    metrics = config["metrics"]
    write_card(out / "run_model.json", {{"model": "m", "kind": "user", "classes": ["a", "b", "c"],
                                         "layers": ["conv2"], "held_out_accuracy": 1.0, "extracted_accuracy": 0.9,
                                         "extracted_images": 120, "chance_accuracy": 0.333333}})
    atlas_metrics(out / "run_model.json", out / "acts.h5", out / "layout.h5", [out / "cells.h5"], [out / "icons.h5"],
                  out / "metrics.json", Metrics(0, "conv2", [4], "cosine", **metrics), log)
    print("stages ran without torch")
""")


def test_layout_environment_stages_run_without_torch(tmp_path):
    from tools.runs import validated

    config = validated(
        {"layout": {"n_neighbors": 10}, "montage": {"cell_px": 8}, "metrics": {"trustworthiness_sample": 100}}
    )
    script = STAGES_WITHOUT_TORCH.format(out=str(tmp_path), config=config)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stages ran without torch" in result.stdout
    assert (tmp_path / "atlas.png").exists() and (tmp_path / "metrics.json").exists()
    assert (tmp_path / "class_cells.h5").exists()


def test_layout_environment_provides_what_those_stages_import():
    env = yaml.safe_load((REPO / "envs" / "layout.yaml").read_text())
    pip_packages = {line.split("==")[0].lower() for line in env["dependencies"][-1]["pip"]}
    assert {"umap-learn", "scikit-learn", "matplotlib", "h5py", "numpy", "pillow"} <= pip_packages
    assert "torch" not in pip_packages
    torch_env = yaml.safe_load((REPO / "envs" / "torch.yaml").read_text())
    torch_packages = {line.split("==")[0].lower() for line in torch_env["dependencies"][-1]["pip"]}
    assert {"torch", "h5py", "numpy", "pillow"} <= torch_packages


def test_the_lock_pins_every_package_of_requirements_txt_at_its_version_with_hashes():
    direct = lock.pins((REPO / "requirements.txt").read_text())
    locked = lock.pins(lock.LOCK.read_text())
    assert {name: locked.get(name) for name in direct} == direct
    # Every locked package carries the hashes of its files, and is what this environment installed.
    entries = [e for e in re.findall(r"^\S[^\n]*(?:\n[ \t][^\n]*)*", lock.LOCK.read_text(), re.M) if lock.PIN.match(e)]
    assert len(entries) == len(locked) and all("--hash=sha256:" in entry for entry in entries)
    for name in lock.closure(direct):
        assert locked.get(name) == importlib.metadata.version(name), name


def test_environments_pin_their_packages_and_all_they_need_at_the_locks_versions():
    locked = lock.pins(lock.LOCK.read_text())
    for env_file in (REPO / "envs").glob("*.yaml"):
        pinned = lock.env_pins(env_file)
        assert pinned == {name: locked.get(name) for name in pinned}, env_file.name
        assert lock.closure(pinned) == set(pinned), f"{env_file.name} leaves dependencies unpinned"
