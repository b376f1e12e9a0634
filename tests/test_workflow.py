"""The workflow end to end through Snakemake on config/ci.yaml: every output, its metrics, and
byte-identical results from two independent runs, one of them killed and resumed."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from activation_atlas.checking.manifest import read_manifest
from activation_atlas.runtime import sha256_of
from activation_atlas.workflow.provenance import cpu
from activation_atlas.workflow.settings import layer_section
from tools.runs import REPO, TEMPORARY, copy_workflow, load_config, snakemake, tree_digest

# Every test here runs Snakemake.
pytestmark = pytest.mark.workflow

CONFIG = load_config("config/ci.yaml")
RUN, LAYERS, GRIDS = CONFIG["run"], CONFIG["layers"], CONFIG["grid"]["sizes"]


def test_every_configured_atlas_and_metrics_file_is_made(first_run):
    results = first_run / "results" / RUN
    for layer in LAYERS:
        assert (results / "layout" / f"{layer}.png").stat().st_size > 1000
        metrics = json.loads((results / "atlas" / layer / "metrics.json").read_text())
        assert metrics["layer"] == layer
        assert 0.5 < metrics["layout_trustworthiness"] <= 1.0
        assert 0.0 <= metrics["model_held_out_accuracy"] <= 1.0
        for grid in GRIDS:
            figures = metrics["grids"][str(grid)]
            atlas = Image.open(results / "atlas" / layer / f"grid{grid}.png")
            assert atlas.size == (grid * CONFIG["montage"]["cell_px"],) * 2
            with (
                h5py.File(results / "cells" / layer / f"grid{grid}.h5", "r") as cells,
                h5py.File(results / "icons" / layer / f"grid{grid}.h5", "r") as icons,
            ):
                kept = len(cells["count"])
                assert kept == figures["cells_kept"] > 0
                assert (cells["count"][:] > CONFIG["grid"]["min_count"]).all()
                assert icons["icons"].shape[0] == kept and icons["icons"].dtype == np.uint8
                assert np.array_equal(icons["row"][:], cells["row"][:])
                fidelity = icons["fidelity"][:]
                assert figures["mean_icon_fidelity"] == pytest.approx(fidelity.mean(), abs=1e-6)
                assert figures["fraction_of_points_in_kept_cells"] == pytest.approx(
                    cells["count"][:].sum() / cells.attrs["points_total"], abs=1e-6
                )
            assert 0.0 < figures["mean_cell_class_purity"] <= 1.0
            assert figures["mean_icon_fidelity"] > 0.5


def test_per_layer_overrides_reach_their_stage(first_run):
    results = first_run / "results" / RUN
    with h5py.File(results / "icons" / "conv1" / f"grid{GRIDS[0]}.h5", "r") as f:
        assert f["icons"].shape[1:] == (16, 16, 3)
    with h5py.File(results / "icons" / "conv2" / f"grid{GRIDS[0]}.h5", "r") as f:
        assert f["icons"].shape[1:] == (32, 32, 3)
    with h5py.File(results / "layout" / "conv1.h5", "r") as f:
        assert json.loads(f.attrs["config"])["layout"]["metric"] == "euclidean"
    # conv3's stopping rule: the steps each icon took are kept, and their mean is in the metrics.
    with h5py.File(results / "icons" / "conv2" / f"grid{GRIDS[0]}.h5", "r") as f:
        assert "steps" not in f
    render = CONFIG["render"]
    for grid in GRIDS:
        with h5py.File(results / "icons" / "conv3" / f"grid{grid}.h5", "r") as f:
            steps = f["steps"][:]
        assert len(steps) and (steps <= render["steps"] * render["attempts"]).all()
        assert steps.mean() < render["steps"] * render["attempts"]
        metrics = json.loads((results / "atlas" / "conv3" / "metrics.json").read_text())
        assert metrics["grids"][str(grid)]["mean_icon_steps"] == pytest.approx(steps.mean(), abs=1e-3)


def test_activation_files_hold_every_image_of_the_split(first_run):
    n_images = CONFIG["dataset"]["train_per_class"] * 10
    for layer in LAYERS:
        with h5py.File(first_run / "results" / RUN / "activations" / f"{layer}.h5", "r") as f:
            assert f["activations"].shape[0] == n_images * CONFIG["extract"]["positions_per_image"]
            assert sorted(set(f["image_index"][:].tolist())) == list(range(n_images))


def test_every_rule_logged_its_progress_and_benchmark(first_run):
    logs = first_run / "logs"
    n_class_atlases = len(CONFIG["class_atlas"]["classes"]) + len(CONFIG["class_atlas"]["comparisons"])
    shards = CONFIG["extract"]["shards"]
    render_jobs = 0
    for layer in LAYERS:
        for grid in GRIDS:
            with h5py.File(first_run / "results" / RUN / "cells" / layer / f"grid{grid}.h5", "r") as f:
                render_jobs += -(-len(f["count"]) // CONFIG["render"]["cells_per_job"])
    assert render_jobs > len(LAYERS) * len(GRIDS)  # some grids really are split
    maco_sizes = {
        section["icon_size"]
        for section in (layer_section(CONFIG, "render", layer) for layer in LAYERS)
        if section["param"] == "maco"
    }
    # dataset, model (training, description), extract shards, the model's evaluation, per layer (merge,
    # layout, metrics, per grid: bin, merge icons, montage), an amplitude spectrum per maco icon size, the
    # render jobs, 3 per class atlas, per attacked comparison 3 and its shards, 7 per dictionary (learning,
    # layout, icons, montage, the neurons' cells and icons, metrics), the viewer, the numerics, the manifest,
    # the provenance
    n_attacks = len(CONFIG["class_atlas"]["comparisons"])
    assert (
        len(list(logs.rglob("*.benchmark.tsv")))
        == 1
        + 2
        + shards
        + 1
        + len(LAYERS) * (3 + 3 * len(GRIDS))
        + len(maco_sizes)
        + render_jobs
        + 3 * n_class_atlases
        + n_attacks * (3 + CONFIG["attacks"]["shards"])
        + 7 * len(CONFIG["dictionary"]["layers"])
        + 1
        + 3
    )
    n_images = CONFIG["dataset"]["train_per_class"] * 10
    shard_logs = [(logs / RUN / "extract" / f"shard{k}.log").read_text() for k in range(shards)]
    assert f"(shard {shards} of {shards})" in shard_logs[-1]
    assert sum(int(re.findall(r"(\d+)/\d+ images \(", log)[-1]) for log in shard_logs) == n_images
    assert "epoch 8/8" in next(logs.glob("model/*/train.log")).read_text()
    assert "icon attempts" in (logs / RUN / "render" / "conv3" / f"grid{GRIDS[0]}" / "chunk0.log").read_text()
    epochs = CONFIG["dictionary"]["epochs"]
    assert f"epoch {epochs}/{epochs}: loss" in (logs / RUN / "dictionary" / "conv3" / "learn.log").read_text()
    timing = json.loads(next(logs.glob("model/*/timing.json")).read_text())
    assert timing["training_seconds"] > 0


def test_the_run_card_holds_the_models_accuracy_on_the_extracted_images(first_run):
    results = first_run / "results" / RUN
    card = json.loads((results / "model.json").read_text())
    with h5py.File(results / "activations" / f"{LAYERS[0]}.h5", "r") as f:
        _, first_rows = np.unique(f["image_index"][:], return_index=True)
        labels, logits = f["label"][:][first_rows], f["logits"][:][first_rows]
        assert json.loads(f.attrs["classes"]) == card["classes"]  # the demo model names its logits so
    assert card["extracted_images"] == len(labels) == CONFIG["dataset"]["train_per_class"] * 10
    assert card["extracted_accuracy"] == round(float(np.mean(logits.argmax(1) == labels)), 6)
    assert card["chance_accuracy"] == 0.1
    for layer in LAYERS:
        metrics = json.loads((results / "atlas" / layer / "metrics.json").read_text())
        assert metrics["model_accuracy_on_extracted_images"] == card["extracted_accuracy"]
        for grid in GRIDS:
            figures = metrics["grids"][str(grid)]
            assert figures["cell_top_class_by"] == "attribution"
            assert 0 <= figures["class_agreement"] <= 1 and 0 <= figures["pure_cells"] <= figures["cells_kept"]


def test_a_maco_layer_is_rendered_from_the_datasets_amplitude_spectrum(first_run):
    maco = [layer for layer in LAYERS if layer_section(CONFIG, "render", layer)["param"] == "maco"]
    assert maco, "config/ci.yaml renders a layer with render.param maco"
    size = layer_section(CONFIG, "render", maco[0])["icon_size"]
    with h5py.File(first_run / "results" / RUN / "spectrum" / f"{size}px.h5", "r") as f:
        amplitude = f["amplitude"][:]
        assert amplitude.shape == (3, size, size // 2 + 1) and f.attrs["images"] == 400
    assert np.isfinite(amplitude).all() and amplitude[:, 0, 0].max() > amplitude[:, 1:, 1:].mean()
    with h5py.File(first_run / "results" / RUN / "icons" / maco[0] / f"grid{GRIDS[0]}.h5", "r") as f:
        assert f["fidelity"][:].mean() > 0.5
    assert "maco" in (first_run / "logs" / RUN / "render" / maco[0] / f"grid{GRIDS[0]}" / "chunk0.log").read_text()


def test_cells_carry_attribution_and_top_classes(first_run):
    card = json.loads(next((first_run / "resources" / "models").glob("*/model.json")).read_text())
    with h5py.File(first_run / "results" / RUN / "cells" / LAYERS[-1] / f"grid{GRIDS[0]}.h5", "r") as f:
        kept = len(f["count"])
        assert f["mean_attribution"].shape == (kept, len(card["classes"]))
        top = f["top_classes"][:]
        assert top.shape == (kept, 5)
        assert (f["top_class_values"][:, 0] >= f["top_class_values"][:, 1]).all()
        names = [[n.decode() for n in row] for row in f["top_class_names"][:]]
        assert names == [[card["classes"][c] for c in row] for row in top]


def test_class_atlases_select_their_class(first_run):
    card = json.loads(next((first_run / "resources" / "models").glob("*/model.json")).read_text())
    for spec in CONFIG["class_atlas"]["classes"]:
        index = spec if isinstance(spec, int) else card["classes"].index(spec)
        folder = first_run / "results" / RUN / "class_atlas" / str(spec)
        assert Image.open(folder / "atlas.png").size == (3 * CONFIG["montage"]["cell_px"],) * 2
        with h5py.File(folder / "cells.h5", "r") as f:
            assert f.attrs["class_index"] == index and f.attrs["class_name"] == card["classes"][index]
            assert len(f["count"]) > 0
            # The class is the most attributed class of the atlas as a whole.
            totals = (f["mean_attribution"][:] * f["count"][:][:, None]).sum(0)
            assert totals.argmax() == index
        with h5py.File(folder / "icons.h5", "r") as f:
            assert f["icons"].shape[0] == len(f["row"]) > 0


def test_comparison_lays_out_the_attribution_difference(first_run):
    card = json.loads(next((first_run / "resources" / "models").glob("*/model.json")).read_text())
    first, second = CONFIG["class_atlas"]["comparisons"][0]
    a, b = card["classes"].index(first), card["classes"].index(second)
    folder = first_run / "results" / RUN / "class_atlas" / f"{first}_vs_{second}"
    grid = CONFIG["class_atlas"]["grid_size"]
    assert Image.open(folder / "atlas.png").size == (grid * CONFIG["montage"]["cell_px"],) * 2
    with h5py.File(folder / "layout.h5", "r") as f:
        x, xy = f["xy_raw"][:, 0], f["xy"][:]
        assert json.loads(f.attrs["class_name"]) == [first, second]
        assert np.abs(x).max() == pytest.approx(1.0) and np.allclose(xy[:, 0], (x + 1) / 2)
    with h5py.File(folder / "cells.h5", "r") as f:
        col, attribution = f["col"][:], f["mean_attribution"][:]
    # Cells right of the middle favour the first class, cells left of it the second.
    difference = attribution[:, a] - attribution[:, b]
    assert (difference[col >= (grid + 1) // 2] > 0).all() and (difference[col < grid // 2] < 0).all()


def test_atlases_are_also_written_as_tiles(first_run):
    results = first_run / "results" / RUN
    for layer in LAYERS:
        for grid in GRIDS:
            tiles = sorted((results / "atlas" / layer / "tiles" / f"grid{grid}").glob("*.png"))
            per_side = -(-grid // max(1, CONFIG["montage"]["tile_px"] // CONFIG["montage"]["cell_px"]))
            assert len(tiles) == per_side**2
            assert Image.open(tiles[0]).size[0] <= CONFIG["montage"]["tile_px"]
    assert (results / "viewer.html").stat().st_size > 500
    assert (results / "viewer" / "data.js").read_text().startswith("window.ATLAS_VIEWER_DATA = ")


# Slow (two minutes, a whole CI run): CI stays under its 30 minutes. tests/test_kill_resume.py, also slow,
# kills a run in every rule.
@pytest.mark.slow
def test_a_run_killed_and_resumed_by_the_same_command_has_the_bytes_of_an_uninterrupted_one(first_run, tmp_path):
    """A second run of config/ci.yaml from scratch, all its processes killed (SIGKILL) once rendering has
    begun, then the same command again: it resumes by itself (the killed run's lock removed, its
    incomplete outputs remade), and ends with the bytes of the first, uninterrupted run, less the temp
    files (the first run kept them with --notemp): none is left behind, nor any partial output."""
    workdir = copy_workflow(tmp_path / "b")
    command = [sys.executable, "-m", "snakemake", "--configfile", "config/ci.yaml", "--cores", "2"]
    killed = subprocess.Popen(
        command, cwd=workdir, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while not list(workdir.glob(f"results/{RUN}/icons/*/grid*/chunk*.h5")) and time.monotonic() < deadline:
        assert killed.poll() is None, "the run ended before it was killed"
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert list(workdir.glob(".snakemake/locks/*.lock"))
    resumed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "removed the lock of an interrupted run" in resumed.stderr
    first, second = tree_digest(first_run), tree_digest(workdir)
    kept = {path: digest for path, digest in first.items() if not TEMPORARY.search(path)}
    assert len(kept) > 100 and len(kept) < len(first)
    differing = sorted(path for path in kept.keys() | second.keys() if kept.get(path) != second.get(path))
    assert not differing, differing


PORTABLE_REFERENCE = REPO / "reference" / f"{RUN}-portable" / "MANIFEST.json"


def assert_matches_the_portable_reference(run, made: list[str]) -> None:
    """Every file of a portable run that reference/ci-portable lists has its bytes (the reference was
    made on another machine: docs/artifact-evaluation.md names it), so each machine that runs the
    tests checks portable mode's promise once more."""
    reference = read_manifest(PORTABLE_REFERENCE)["files"]
    compared = {path: entry["sha256"] for path, entry in reference.items() if (run / path).is_file()}
    assert set(made) <= set(compared)
    differing = sorted(path for path, digest in compared.items() if sha256_of(run / path) != digest)
    assert not differing, (
        f"a portable run on this CPU ({cpu()['model']}) differs from "
        f"{PORTABLE_REFERENCE.relative_to(REPO)} in {len(differing)} of {len(compared)} files: "
        f"{differing}; `make kernels` names the operations this CPU computes otherwise"
    )


def test_portable_runs_are_byte_identical_under_capped_kernels_and_every_torch_job_is_pinned(first_run, tmp_path):
    """config/ci.yaml in portable mode up to one layer's layout and icons, once as it is and once with
    torch, oneDNN and numpy capped as on a CPU without AVX-512 or AVX2: the same bytes, every torch job
    on torch's baseline kernels, and not the native run's weights where this CPU has better kernels; and
    the bytes of the committed portable reference, made on another machine."""
    targets = [f"results/{RUN}/layout/conv2.h5", f"results/{RUN}/icons/conv2/grid{GRIDS[0]}.h5"]
    capped = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "NPY_DISABLE_CPU_FEATURES": "X86_V4"}
    runs = {}
    for name, env in (("as is", {}), ("capped", capped)):
        workdir = copy_workflow(tmp_path / name.replace(" ", "_"))
        result = snakemake(
            workdir, "--configfile", "config/ci.yaml", "--config", "portable=True", "--cores", "2", *targets, env=env
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        runs[name] = workdir
        torch_logs = [
            *workdir.glob("logs/model/*/train.log"),
            *workdir.glob(f"logs/{RUN}/extract/shard*.log"),
            *workdir.glob(f"logs/{RUN}/render/conv2/grid{GRIDS[0]}/chunk*.log"),
        ]
        assert len(torch_logs) > 1 + CONFIG["extract"]["shards"]  # training, extraction, rendering
        for log in torch_logs:
            assert re.search(r"torch \S+: DEFAULT CPU kernels, .*IEEE square roots \(portable\)", log.read_text()), log
        numerics = json.loads((workdir / "results" / RUN / "numerics.json").read_text())
        assert numerics["portable"] is True and numerics["environment"]["ATEN_CPU_CAPABILITY"] == "default"
    digests = {name: tree_digest(workdir) for name, workdir in runs.items()}
    assert len(digests["as is"]) > 10 and digests["as is"] == digests["capped"]
    assert_matches_the_portable_reference(runs["as is"] / "results" / RUN, [t.split("/", 2)[2] for t in targets])
    import torch

    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":  # the native run used better kernels
        weights = "resources/models/demo_cnn-ci/weights.pt"
        assert digests["as is"][weights] != tree_digest(first_run)[weights]


def test_a_bad_config_key_stops_the_workflow_with_its_name(tmp_path):
    workdir = copy_workflow(tmp_path / "w")
    config = yaml.safe_load((workdir / "config/ci.yaml").read_text())
    config["render"]["stepz"] = 3
    (workdir / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "bad.yaml", "-n")
    assert result.returncode != 0
    assert "config: unknown key stepz in render; valid keys: icon_size, steps," in result.stderr


def test_the_resnet32_config_runs_offline_from_the_committed_checkpoint_as_the_readme_says():
    """docs/models.md: --config 'model={url: "", checkpoint: ...}' replaces the download by the committed file;
    a url and a checkpoint together are refused, naming both."""
    checkpoint = "tests/data/cifar10-resnet32/resnet32-d509ac18.th"
    offline = snakemake(
        REPO,
        "--configfile",
        "config/cifar10-resnet32.yaml",
        "-n",
        "--forceall",
        "--config",
        f'model={{url: "", checkpoint: {checkpoint}}}',
    )
    assert offline.returncode == 0, offline.stdout[-3000:] + offline.stderr[-3000:]
    assert "describe_model" in offline.stdout and "download_weights" not in offline.stdout
    both = snakemake(
        REPO,
        "--configfile",
        "config/cifar10-resnet32.yaml",
        "-n",
        "--forceall",
        "--config",
        f"model={{checkpoint: {checkpoint}}}",
    )
    assert both.returncode != 0
    assert (
        f"model.url (https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
        f"resnet32-d509ac18.th) and model.checkpoint ({checkpoint}) are both set"
    ) in both.stdout + both.stderr


def test_lint_is_clean():
    result = snakemake(REPO, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_every_rule_declares_env_log_benchmark_threads_and_resources():
    rules_text = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    blocks = re.split(r"^\s*rule ", rules_text, flags=re.M)[1:]
    assert len(blocks) >= 12
    for block in blocks:
        name = block.split(":", 1)[0]
        for keyword in ("conda:", "log:", "benchmark:", "threads:", "resources:"):
            assert re.search(rf"\n\s+{keyword}", block), f"rule {name} lacks {keyword}"
