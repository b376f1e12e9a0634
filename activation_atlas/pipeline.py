"""One function per workflow stage: explicit input and output paths plus the validated config.

The Snakemake scripts call these and nothing else; they work just as well without Snakemake.
Outputs are written under temporary names and renamed when complete.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import h5py
import numpy as np

from activation_atlas import binning, layout
from activation_atlas.h5io import create_h5, write_dataset
from activation_atlas.runtime import derive_seed, write_json

def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# --- dataset -----------------------------------------------------------------------------------

def generate_dataset_stage(out_dir, cfg: dict, log) -> None:
    from activation_atlas.data.generated import generate_dataset

    ds = cfg["dataset"]
    generate_dataset(out_dir, seed=cfg["seed"], image_size=ds["image_size"],
                     images_per_class={"train": ds["train_per_class"],
                                       "held_out": ds["held_out_per_class"]},
                     log=log)


# --- downloads ---------------------------------------------------------------------------------

def download_stage(url: str, dest, sha256: str | None, pin_file, log) -> None:
    from activation_atlas.data.download import download

    download(url, dest, sha256=sha256, pin_file=pin_file, log=log)


def unpack_dataset_stage(archive, out_dir, log) -> None:
    from activation_atlas.data.download import extract_archive

    extract_archive(archive, out_dir, log=log)


# --- model -------------------------------------------------------------------------------------

def model_input_size(cfg: dict) -> int:
    """The side of the images the model is fed."""
    if cfg["model"]["input_size"] is not None:
        return cfg["model"]["input_size"]
    return cfg["dataset"]["image_size"] if cfg["dataset"]["kind"] == "generated" else 224


def train_model_stage(dataset_dir, weights_out, card_out, timing_out, cfg: dict, threads: int,
                      log) -> None:
    import torch

    from activation_atlas.data.image_folder import load_all, scan_image_folder
    from activation_atlas.models import build_model
    from activation_atlas.models.demo_cnn import accuracy, train_demo_cnn
    from activation_atlas.runtime import configure_torch

    seed = derive_seed(cfg["seed"], "train")
    configure_torch(threads, seed)
    size = cfg["dataset"]["image_size"]
    train = scan_image_folder(Path(dataset_dir) / "train")
    held_out = scan_image_folder(Path(dataset_dir) / "held_out")
    if train.classes != held_out.classes:
        raise ValueError(f"train classes {train.classes} differ from held-out classes {held_out.classes}")
    log(f"loading {len(train)} training and {len(held_out)} held-out images of {size} px")
    x_train, y_train = load_all(train, size), torch.from_numpy(train.labels)
    x_held, y_held = load_all(held_out, size), torch.from_numpy(held_out.labels)
    model = build_model(cfg["model"], num_classes=len(train.classes))
    model = model.to(memory_format=torch.channels_last)
    training = cfg["model"]["train"]
    history = train_demo_cnn(model, x_train, y_train, epochs=training["epochs"],
                             batch_size=training["batch_size"], lr=training["lr"],
                             seed=seed, log=log)
    held_out_accuracy = accuracy(model, x_held, y_held)
    train_accuracy = accuracy(model, x_train, y_train)
    log(f"held-out accuracy {held_out_accuracy:.4f}, training accuracy {train_accuracy:.4f}")
    buffer = io.BytesIO()   # a file object keeps the archive's inner name independent of the path
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(weights_out, buffer.getvalue())
    write_json(card_out, {
        "model": cfg["model"]["name"], "kind": cfg["model"]["kind"], "classes": list(train.classes),
        "layers": [f"conv{k + 1}" for k in range(len(cfg["model"]["channels"]))],
        "held_out_accuracy": round(held_out_accuracy, 6), "train_accuracy": round(train_accuracy, 6),
        "held_out_images": len(held_out), "train_images": len(train),
        "loss_per_epoch": [round(x, 6) for x in history["loss_per_epoch"]],
    })
    # Wall time varies from run to run, so it lives beside the logs, not in resources/.
    write_json(timing_out, {"training_seconds": round(history["seconds"], 3),
                            "images_per_second": round(len(train) * training["epochs"]
                                                       / history["seconds"], 1)})


def add_python_path(cfg: dict) -> None:
    """Make a user model's package importable (model.python_path)."""
    import sys

    for folder in cfg["model"]["python_path"]:
        resolved = str(Path(folder).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)


def describe_model_stage(weights, card_out, cfg: dict, log) -> None:
    """The model card of a model the workflow does not train: its class names and layers, after
    checking that the network builds and its weights load (torchvision fetches them here)."""
    from activation_atlas.models import class_names, layer_names, load_model

    add_python_path(cfg)
    model = load_model(cfg["model"], weights)
    layers = list(layer_names(model))
    unknown = [layer for layer in cfg["layers"] if layer not in layers]
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(map(repr, unknown))}; valid layers: {', '.join(layers)}")
    log(f"{cfg['model']['kind']} model {cfg['model']['name']} loaded; {len(layers)} layers")
    write_json(card_out, {"model": cfg["model"]["name"], "kind": cfg["model"]["kind"],
                          "classes": class_names(cfg["model"], []), "layers": layers,
                          "held_out_accuracy": None})


def load_configured_model(cfg: dict, weights, card, device: str):
    """The model of the config with its weights, as extraction and rendering use it."""
    from activation_atlas.models import load_model

    add_python_path(cfg)
    classes = json.loads(Path(card).read_text())["classes"]
    return load_model(cfg["model"], weights or None, len(classes), device)


# --- extraction --------------------------------------------------------------------------------

def dataset_images(images_dir, cfg: dict, log):
    """The images to extract from: the configured folder, subsampled to max_images."""
    from activation_atlas.data.image_folder import scan_image_folder, subsample

    ds = cfg["dataset"]
    folder = scan_image_folder(images_dir, ds["layout"])
    chosen = subsample(folder, ds["max_images"], derive_seed(cfg["seed"], "subsample"), ds["stratified"])
    log(f"{len(chosen)} of {len(folder)} images in {images_dir}"
        + (f" ({len(folder.classes)} classes)" if folder.classes else " (unlabelled)"))
    return chosen


def extract_stage(images_dir, weights, model_card, out_paths: dict, cfg: dict, threads: int, log,
                  shard: int = 0) -> dict:
    """Shard `shard` of extract.shards: its run of whole batches of the dataset, one file per layer."""
    from activation_atlas.data.image_folder import read_batch
    from activation_atlas.extract import ImageBatches, extract_activations, shard_images
    from activation_atlas.models import layer_names
    from activation_atlas.models.capture import resolve_layers
    from activation_atlas.runtime import configure_torch, resolve_device

    ex = cfg["extract"]
    configure_torch(threads, cfg["seed"])
    device = resolve_device(cfg["device"])
    folder = dataset_images(images_dir, cfg, log)
    images = shard_images(len(folder), ex["batch_size"], shard, ex["shards"])
    model = load_configured_model(cfg, weights, model_card, device)
    modules = resolve_layers(model, cfg["layers"], layer_names(model))
    size, policy = model_input_size(cfg), cfg["model"]["resize"]
    log(f"extracting {', '.join(cfg['layers'])} from images {images.start}–{images.stop - 1} (shard {shard + 1} "
        f"of {ex['shards']}) at {size} px on {device}")
    # The number of shards is left out: the merged files are the same for any.
    settings = {k: v for k, v in ex.items() if k != "shards"}
    provenance = {"seed": cfg["seed"], "model": cfg["model"]["name"], "classes": list(folder.classes),
                  "shard": [shard, ex["shards"]],
                  "config": {"dataset": cfg["dataset"], "model": cfg["model"], "extract": settings}}
    batches = ImageBatches(lambda idx: read_batch(folder, idx, size, policy, cfg["dataset"]["on_unreadable"],
                                                  log),
                           folder.labels, ex["batch_size"], images)
    return extract_activations(
        model, modules, batches, len(images), {layer: Path(p) for layer, p in out_paths.items()},
        positions_per_image=ex["positions_per_image"], exclude_edge=ex["exclude_edge"],
        seed=cfg["seed"], provenance=provenance, log=log, device=device, attribution=ex["attribution"],
        attribution_top_k=ex["attribution_top_k"], autocast=ex["autocast"])


def merge_activations_stage(shard_paths, out_path, log) -> None:
    from activation_atlas.extract import merge_shards

    rows = merge_shards([Path(p) for p in shard_paths], Path(out_path))
    log(f"merged {len(shard_paths)} shard(s): {rows} activations in {out_path}")


def sample_images(xy, cells: binning.Cells, image_index, cfg: dict, *seed_names) -> np.ndarray:
    """grid.samples_per_cell images of each kept cell, drawn with a seed derived from seed_names."""
    rng = np.random.default_rng(derive_seed(cfg["seed"], "samples", *seed_names))
    return binning.cell_samples(xy, cells, image_index, cfg["grid"]["samples_per_cell"], rng)


def read_activations(path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Activations (N, C), labels (N,) and class names of a layer's activation file."""
    with h5py.File(path, "r") as f:
        return f["activations"][:], f["label"][:], json.loads(f.attrs["classes"])


# --- layout ------------------------------------------------------------------------------------

def section_for_layer(cfg: dict, section: str, layer: str) -> dict:
    """A config section with the layer's entry of its `per_layer` overrides applied."""
    values = {k: v for k, v in cfg[section].items() if k != "per_layer"}
    values.update(cfg[section].get("per_layer", {}).get(layer, {}))
    return values


def layout_params(cfg: dict, layer: str, n_points: int | None = None) -> dict:
    """The layer's UMAP settings; n_neighbors at most n_points − 1 when n_points is given."""
    params = section_for_layer(cfg, "layout", layer)
    del params["scatter_size"]
    if n_points is not None:
        params["n_neighbors"] = min(params["n_neighbors"], n_points - 1)
    return params


def lay_out(acts: np.ndarray, params: dict, seed: int, log) -> tuple[np.ndarray, np.ndarray]:
    """UMAP of the activations, raw and normalised to [0, 1]²."""
    log(f"UMAP of {acts.shape[0]} × {acts.shape[1]} activations: {params}")
    with redirect_stdout(log):   # umap-learn reports its progress with print()
        raw = layout.fit_umap(acts, seed=seed, verbose=True, **params)
    return raw, layout.normalise_layout(raw)


def write_layout(path, raw, xy, params: dict, **provenance) -> None:
    with create_h5(path, "layout", config={"layout": params}, **provenance) as f:
        write_dataset(f, "xy_raw", raw, "UMAP units", "row, (x, y)")
        write_dataset(f, "xy", xy, "fraction of the atlas", "row, (x, y) in [0, 1]; y grows upwards")


def layout_stage(activations_path, layout_out, scatter_out, layer: str, cfg: dict, log) -> None:
    params = layout_params(cfg, layer)
    with h5py.File(activations_path, "r") as f:
        labels, classes = f["label"][:], json.loads(f.attrs["classes"])
        # The dataset, not an array: with layout.pca_dims it is reduced block by block.
        raw, xy = lay_out(f["activations"], params, derive_seed(cfg["seed"], "layout", layer), log)
    log("layout done; writing coordinates and scatter plot")
    write_layout(layout_out, raw, xy, params, layer=layer, seed=cfg["seed"])
    plot_layout(xy, labels, classes, scatter_out, f"{layer}: UMAP of {len(xy)} activations",
                cfg["layout"]["scatter_size"])


def plot_layout(xy: np.ndarray, labels: np.ndarray, classes: list[str], out, title: str, size_px: int):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k, name in enumerate(classes):
        mine = labels == k
        ax.scatter(xy[mine, 0], xy[mine, 1], s=2, color=cmap(k % cmap.N), label=name, linewidths=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    if len(classes) <= 20:
        ax.legend(fontsize=6, markerscale=4, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)


# --- binning -----------------------------------------------------------------------------------

def read_attribution(activations_path):
    """The attribution datasets of an activation file (None where absent)."""
    with h5py.File(activations_path, "r") as f:
        attribution = f["attribution"][:] if "attribution" in f else None
        attribution_class = f["attribution_class"][:] if "attribution_class" in f else None
    return attribution, attribution_class


def write_cells(path, cells: binning.Cells, xy, attribution, attribution_class, logit_names, min_count: int,
                samples: np.ndarray, **provenance) -> None:
    """A cells file: the kept cells, their means, class histograms and sample images, and with
    attributions their mean attribution and top-5 classes."""
    with create_h5(path, "cells", grid_size=cells.grid_size, **provenance) as f:
        f.attrs["min_count"] = min_count
        f.attrs["points_total"] = cells.points_total
        write_dataset(f, "row", cells.row, "cell", "cell; row 0 at y = 0 (bottom)")
        write_dataset(f, "col", cells.col, "cell", "cell; col 0 at x = 0 (left)")
        write_dataset(f, "count", cells.count, "activations", "cell")
        write_dataset(f, "mean", cells.mean, "activation", "cell, channel")
        write_dataset(f, "class_histogram", cells.class_histogram, "activations", "cell, class")
        write_dataset(f, "sample_images", samples, "image index (-1: none)", "cell, sample")
        if attribution is not None:
            mean, top, values = binning.cell_attributions(xy, cells, attribution, attribution_class,
                                                          len(logit_names))
            write_dataset(f, "mean_attribution", mean, "logit (h · ∂logit/∂h)", "cell, class")
            write_dataset(f, "top_classes", top, "class index", "cell, rank")
            write_dataset(f, "top_class_values", values, "logit (h · ∂logit/∂h)", "cell, rank")
            names = np.array([[logit_names[c] for c in row] for row in top], dtype=object)
            write_dataset(f, "top_class_names", names, "class name", "cell, rank", dtype=h5py.string_dtype())


def bin_stage(activations_path, layout_path, model_card, cells_out, layer: str, grid_size: int, cfg: dict,
              log) -> None:
    """One grid of one layer. Activations and attributions are read from their file in blocks."""
    with h5py.File(layout_path, "r") as f:
        xy = f["xy"][:]
    min_count = cfg["grid"]["min_count"]
    with h5py.File(activations_path, "r") as f:
        classes = json.loads(f.attrs["classes"])
        cells = binning.bin_layout(xy, f["activations"], f["label"][:], grid_size, min_count, len(classes))
        log(f"{layer} grid {grid_size}: {len(cells.count)} cells with more than {min_count} points "
            f"hold {cells.kept_fraction:.1%} of {len(xy)} points")
        samples = sample_images(xy, cells, f["image_index"][:], cfg, layer, grid_size)
        write_cells(cells_out, cells, xy, f.get("attribution"), f.get("attribution_class"),
                    json.loads(Path(model_card).read_text())["classes"], min_count, samples, layer=layer,
                    seed=cfg["seed"], classes=list(classes), config={"grid": cfg["grid"]})


def read_class_attribution(activations_path, model_card):
    """Attributions (and stored classes, or None) of an activation file, and the model's class names;
    an error when the file holds none."""
    attribution, attribution_class = read_attribution(activations_path)
    if attribution is None:
        raise ValueError(f"{activations_path} holds no attributions: class atlases need "
                         f"extract.attribution: true")
    return attribution, attribution_class, json.loads(Path(model_card).read_text())["classes"]


def read_selection(activations_path, rows: np.ndarray, what: str, log):
    """Activations, labels, class names and image indices of the selected rows; too few to lay out is
    an error."""
    with h5py.File(activations_path, "r") as f:
        total = len(f["image_index"])
        log(f"{what}: {len(rows)} of {total} activations selected")
        if len(rows) < 3:
            raise ValueError(f"only {len(rows)} activations selected for {what}: too few to lay out; "
                             f"raise class_atlas.top_n")
        return (f["activations"][:][rows], f["label"][:][rows], json.loads(f.attrs["classes"]),
                f["image_index"][:][rows])


def bin_selection(xy, acts, labels, classes, attribution, attribution_class, logit_names, image_index,
                  cells_out, cfg, log, seed_names: tuple, **provenance) -> None:
    """Bin a class atlas's layout on the class_atlas grid and write its cells."""
    ca = cfg["class_atlas"]
    cells = binning.bin_layout(xy, acts, labels, ca["grid_size"], ca["min_count"], len(classes))
    log(f"grid {ca['grid_size']}: {len(cells.count)} cells kept")
    samples = sample_images(xy, cells, image_index, cfg, *seed_names)
    write_cells(cells_out, cells, xy, attribution, attribution_class, logit_names, ca["min_count"], samples,
                classes=list(classes), config={"class_atlas": ca}, **provenance)


def class_cells_stage(activations_path, model_card, class_spec, layout_out, scatter_out, cells_out,
                      cfg: dict, log) -> None:
    """Select the activations of one class's atlas, lay them out and bin them."""
    from activation_atlas.class_atlas import class_atlas_layer, resolve_class, select_for_class

    layer = class_atlas_layer(cfg)
    attribution, attribution_class, logit_names = read_class_attribution(activations_path, model_card)
    index = resolve_class(class_spec, logit_names)
    rows = select_for_class(attribution, attribution_class, index, cfg["class_atlas"]["top_n"])
    acts, labels, classes, image_index = read_selection(
        activations_path, rows, f"class {logit_names[index]!r} (index {index}) in {layer}", log)
    attribution = attribution[rows]
    attribution_class = attribution_class[rows] if attribution_class is not None else None
    params = layout_params(cfg, layer, len(rows))
    raw, xy = lay_out(acts, params, derive_seed(cfg["seed"], "class_atlas", layer, index), log)
    provenance = {"layer": layer, "seed": cfg["seed"], "class_index": index, "class_name": logit_names[index]}
    write_layout(layout_out, raw, xy, params, **provenance)
    plot_layout(xy, labels, classes, scatter_out,
                f"{layer}, class {logit_names[index]}: {len(xy)} activations", cfg["layout"]["scatter_size"])
    bin_selection(xy, acts, labels, classes, attribution, attribution_class, logit_names, image_index,
                  cells_out, cfg, log, ("class_atlas", layer, index), **provenance)


def comparison_cells_stage(activations_path, model_card, pair, layout_out, scatter_out, cells_out,
                           cfg: dict, log) -> None:
    """Two classes side by side: the activations of either class's atlas, x = their attribution to the
    first minus to the second (normalised to [−1, 1]), y = a 1-D UMAP of the activations; binned."""
    from activation_atlas.class_atlas import (class_atlas_layer, comparison_layout, comparison_x, resolve_class,
                                              select_for_comparison)

    layer = class_atlas_layer(cfg)
    attribution, attribution_class, logit_names = read_class_attribution(activations_path, model_card)
    first, second = (resolve_class(spec, logit_names) for spec in pair)
    if first == second:
        raise ValueError(f"class_atlas.comparisons: {pair} names the same class twice")
    names = [logit_names[first], logit_names[second]]
    rows = select_for_comparison(attribution, attribution_class, first, second, cfg["class_atlas"]["top_n"])
    acts, labels, classes, image_index = read_selection(activations_path, rows,
                                                        f"{names[0]!r} vs {names[1]!r} in {layer}", log)
    attribution = attribution[rows]
    attribution_class = attribution_class[rows] if attribution_class is not None else None
    x = comparison_x(attribution, attribution_class, first, second)
    params = layout_params(cfg, layer, len(rows))
    log(f"1-D UMAP of {acts.shape[0]} × {acts.shape[1]} activations: {params}")
    with redirect_stdout(log):
        y_raw = layout.fit_umap(acts, seed=derive_seed(cfg["seed"], "comparison", layer, first, second),
                                verbose=True, n_components=1, **params)[:, 0]
    xy = comparison_layout(x, layout.normalise_layout(y_raw[:, None])[:, 0])
    provenance = {"layer": layer, "seed": cfg["seed"], "class_index": [first, second], "class_name": names,
                  "x_axis": f"attribution to {names[0]} minus to {names[1]}, normalised to [-1, 1] "
                            f"(x = 0: {names[1]}, x = 1: {names[0]})",
                  "y_axis": "1-D UMAP of the activations"}
    write_layout(layout_out, np.column_stack([x, y_raw]).astype(np.float32), xy, params, **provenance)
    plot_layout(xy, labels, classes, scatter_out,
                f"{layer}: {names[1]} ← attribution → {names[0]} ({len(xy)} activations)",
                cfg["layout"]["scatter_size"])
    bin_selection(xy, acts, labels, classes, attribution, attribution_class, logit_names, image_index,
                  cells_out, cfg, log, ("comparison", layer, first, second), **provenance)


def read_cells(path) -> binning.Cells:
    with h5py.File(path, "r") as f:
        return binning.Cells(grid_size=int(f.attrs["grid_size"]), row=f["row"][:], col=f["col"][:],
                             count=f["count"][:], mean=f["mean"][:],
                             class_histogram=f["class_histogram"][:],
                             points_total=int(f.attrs["points_total"]))


# --- rendering ---------------------------------------------------------------------------------

def render_settings(cfg: dict, layer: str):
    from activation_atlas.optvis.render import RenderSettings
    from activation_atlas.optvis.transforms import TransformSpec

    r = section_for_layer(cfg, "render", layer)
    t = r["transforms"]
    return RenderSettings(
        icon_size=r["icon_size"], steps=r["steps"], attempts=r["attempts"], lr=r["lr"],
        cossim_pow=r["cossim_pow"], batch_size=r["batch_size"],
        redirected_relu_steps=r["redirected_relu_steps"],
        transforms=TransformSpec(pad=t["pad"], jitters=tuple(t["jitters"]), scale_base=t["scale_base"],
                                 scale_exponents=tuple(t["scale_exponents"]),
                                 rotation_deg=t["rotation_deg"]))


def render_chunks(n_cells: int, cfg: dict, layer: str) -> int:
    """How many render jobs the n_cells of one of the layer's grids take (render.cells_per_job)."""
    r = section_for_layer(cfg, "render", layer)
    per_job = r["cells_per_job"]
    if per_job is None:
        return 1
    if per_job * r["attempts"] % r["batch_size"]:
        # Chunks that end mid-batch would batch icons differently from one job, and change their bits.
        raise ValueError(f"render.cells_per_job={per_job} for layer {layer}: cells_per_job × attempts "
                         f"({per_job * r['attempts']}) must be a multiple of batch_size ({r['batch_size']})")
    return max(1, -(-n_cells // per_job))


def cells_count(cells_path) -> int:
    with h5py.File(cells_path, "r") as f:
        return len(f["count"])


def render_stage(cells_path, activations_path, weights, model_card, icons_out, layer: str,
                 grid_size: int, cfg: dict, threads: int, log, chunk: int | None = None) -> None:
    """Icons of the kept cells of one grid, or of chunk `chunk` of them (render.cells_per_job each)."""
    from activation_atlas.extract import layer_key
    from activation_atlas.models import layer_names
    from activation_atlas.models.capture import resolve_layers
    from activation_atlas.optvis.objectives import whitening_matrix
    from activation_atlas.optvis.render import render_icons
    from activation_atlas.runtime import configure_torch, resolve_device

    configure_torch(threads, cfg["seed"])
    device = resolve_device(cfg["device"])
    cells = read_cells(cells_path)
    per_job = section_for_layer(cfg, "render", layer)["cells_per_job"]
    chosen = slice(chunk * per_job, (chunk + 1) * per_job) if chunk is not None and per_job else slice(None)
    rows, cols, means = cells.row[chosen], cells.col[chosen], cells.mean[chosen]
    model = load_configured_model(cfg, weights, model_card, device)
    module = resolve_layers(model, [layer], layer_names(model))
    whitening = None
    settings = render_settings(cfg, layer)
    if cfg["render"]["whiten"]:
        with h5py.File(activations_path, "r") as f:
            whitening = whitening_matrix(f["activations"][:])
    log(f"rendering {len(rows)} of {len(cells.count)} icons of {layer} grid {grid_size} on {device}: "
        f"{settings.icon_size} px, {settings.steps} steps × {settings.attempts} attempts, "
        f"batches of {settings.batch_size}")
    keys = [(layer_key(layer), grid_size, int(r), int(c)) for r, c in zip(rows, cols)]
    icons = render_icons(model, module, means, keys, cfg["seed"], settings, whitening, device, log)
    log(f"fidelity mean {icons.fidelity.mean():.3f}, min {icons.fidelity.min():.3f}")
    write_icons(icons_out, {"row": rows, "col": cols, "icons": icons.images, "objective": icons.objective,
                            "fidelity": icons.fidelity, "attempt": icons.attempt},
                layer=layer, grid_size=grid_size, seed=cfg["seed"], config={"render": cfg["render"]})


ICON_DATASETS = {"row": ("cell", "icon"), "col": ("cell", "icon"), "icons": ("uint8 RGB", "icon, y, x, channel"),
                 "objective": ("objective", "icon"), "fidelity": ("cosine", "icon"), "attempt": ("index", "icon")}


def write_icons(path, data: dict, **provenance) -> None:
    with create_h5(path, "icons", **provenance) as f:
        for name, (unit, axes) in ICON_DATASETS.items():
            write_dataset(f, name, data[name], unit, axes)


def merge_icons_stage(chunk_paths, icons_out, log) -> None:
    """One grid's icon chunks, concatenated in order (the same file for any number of chunks)."""
    parts = {name: [] for name in ICON_DATASETS}
    for path in chunk_paths:
        with h5py.File(path, "r") as f:
            provenance = {k: v for k, v in f.attrs.items() if k not in ("stage", "package_version")}
            for name in ICON_DATASETS:
                parts[name].append(f[name][:])
    write_icons(icons_out, {name: np.concatenate(arrays) for name, arrays in parts.items()}, **provenance)
    log(f"merged {len(chunk_paths)} chunk(s): {sum(len(r) for r in parts['row'])} icons in {icons_out}")


# --- atlas -------------------------------------------------------------------------------------

def montage_stage(icons_path, cells_path, atlas_out, tiles_out, cfg: dict, log) -> None:
    """The atlas as tiles (PNGs of tile_px, whole cells) and as one image assembled from them, downscaled
    to at most max_image_px: no step holds more than one full-resolution tile."""
    from PIL import Image

    from activation_atlas.montage import atlas_image, density_factors, tile_layout, tile_name

    m = cfg["montage"]
    cell_px, background = m["cell_px"], tuple(m["background"])
    with h5py.File(icons_path, "r") as icons, h5py.File(cells_path, "r") as cells:
        grid_size = int(icons.attrs["grid_size"])
        rows, cols = icons["row"][:], icons["col"][:]
        if not (np.array_equal(rows, cells["row"][:]) and np.array_equal(cols, cells["col"][:])):
            raise ValueError(f"{icons_path} and {cells_path} hold different cells: re-run the render rule")
        factors = density_factors(cells["count"][:], m["density_floor"])
        tile_cells, tiles_per_side = tile_layout(grid_size, cell_px, m["tile_px"])
        side = grid_size * cell_px
        scale = min(1.0, m["max_image_px"] / side)
        overview = Image.new("RGB", (round(side * scale),) * 2, background)
        partial = Path(f"{tiles_out}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        image_rows = grid_size - 1 - rows   # tiles count rows from the top of the image
        for tile_row in range(tiles_per_side):
            for tile_col in range(tiles_per_side):
                r0, c0 = tile_row * tile_cells, tile_col * tile_cells
                n_rows, n_cols = min(tile_cells, grid_size - r0), min(tile_cells, grid_size - c0)
                inside = np.flatnonzero((image_rows >= r0) & (image_rows < r0 + n_rows)
                                        & (cols >= c0) & (cols < c0 + n_cols))
                tile_icons = icons["icons"][inside] if len(inside) else np.zeros((0, 1, 1, 3), np.uint8)
                tile = atlas_image(tile_icons, rows[inside], cols[inside], grid_size, cell_px, background,
                                   factors[inside], m["density"], r0, c0, n_rows, n_cols)
                tile.save(partial / tile_name(tile_row, tile_col), format="PNG")
                left, top = (int(c0 * cell_px * scale), int(r0 * cell_px * scale))
                right, bottom = (int((c0 + n_cols) * cell_px * scale), int((r0 + n_rows) * cell_px * scale))
                if scale < 1.0:
                    tile = tile.resize((right - left, bottom - top), Image.LANCZOS)
                overview.paste(tile, (left, top))
            log(f"tile row {tile_row + 1}/{tiles_per_side} done")
    buffer = io.BytesIO()
    overview.save(buffer, format="PNG")
    atomic_write_bytes(atlas_out, buffer.getvalue())
    shutil.rmtree(tiles_out, ignore_errors=True)
    os.replace(partial, tiles_out)
    log(f"{len(rows)} icons on a {grid_size}×{grid_size} grid: {tiles_per_side}² tiles of {tile_cells}² cells"
        f" in {tiles_out}; atlas image {overview.width} px" + (f" (downscaled ×{scale:.3f})" if scale < 1 else ""))


def metrics_stage(model_card, activations_path, layout_path, cells_paths: dict, icons_paths: dict,
                  metrics_out, layer: str, cfg: dict, log) -> None:
    from activation_atlas.montage import trustworthiness_on_sample

    acts, _, _ = read_activations(activations_path)
    with h5py.File(layout_path, "r") as f:
        xy = f["xy"][:]
    m = cfg["metrics"]
    seed = derive_seed(cfg["seed"], "metrics", layer)
    trust = trustworthiness_on_sample(acts, xy, m["trustworthiness_sample"], m["trustworthiness_neighbors"],
                                      layout_params(cfg, layer)["metric"], seed)
    grids = {}
    for grid_size in sorted(cells_paths):
        cells = read_cells(cells_paths[grid_size])
        with h5py.File(icons_paths[grid_size], "r") as f:
            fidelity = f["fidelity"][:]
        grids[str(grid_size)] = {
            "cells_kept": int(len(cells.count)),
            "fraction_of_points_in_kept_cells": round(cells.kept_fraction, 6),
            "mean_cell_class_purity": round(float(cells.purity.mean()), 6) if len(cells.count) else None,
            "mean_icon_fidelity": round(float(fidelity.mean()), 6) if len(fidelity) else None,
            "min_icon_fidelity": round(float(fidelity.min()), 6) if len(fidelity) else None,
        }
    model_info = json.loads(Path(model_card).read_text())
    result = {
        "layer": layer, "model": model_info["model"], "activations": int(len(acts)),
        "channels": int(acts.shape[1]), "model_held_out_accuracy": model_info.get("held_out_accuracy"),
        "layout_trustworthiness": round(trust, 6),
        "trustworthiness_sample": int(min(m["trustworthiness_sample"], len(acts))),
        "grids": grids,
    }
    log(json.dumps(result, indent=2))
    write_json(metrics_out, result)


# --- viewer ------------------------------------------------------------------------------------

def viewer_stage(run_dir, images_dir, model_card, html_out, assets_out, cfg: dict, log) -> None:
    """The run's viewer: every layer's atlases as zoom levels, then each class atlas and comparison."""
    from activation_atlas.class_atlas import class_atlas_layer, class_slug, comparison_slug
    from activation_atlas.viewer import AtlasSource, viewer_stage as write_viewer

    run_dir = Path(run_dir)
    atlases = [AtlasSource(layer, f"layer {layer}", tuple(
        (g, run_dir / "cells" / layer / f"grid{g}.h5", run_dir / "atlas" / layer / "tiles" / f"grid{g}")
        for g in cfg["grid"]["sizes"])) for layer in cfg["layers"]]
    ca = cfg["class_atlas"]
    titled = ([(class_slug(str(spec)), f"class {spec}") for spec in ca["classes"]]
              + [(comparison_slug(pair), f"{pair[1]} ← vs → {pair[0]}") for pair in ca["comparisons"]])
    for slug, title in titled:
        folder = run_dir / "class_atlas" / slug
        atlases.append(AtlasSource(slug, f"{title} ({class_atlas_layer(cfg)})",
                                   ((ca["grid_size"], folder / "cells.h5", folder / "tiles"),)))
    folder = dataset_images(images_dir, cfg, log)
    write_viewer(run_dir, atlases, model_card, folder.files, html_out, assets_out, cfg, log)
