"""From the validated config to what one job uses. The rules call these to fill their `params`
(a section with a layer's `per_layer` overrides applied), and the render stage turns the resolved
render section into typed settings; no stage ever sees the config itself."""

from __future__ import annotations

import os

from activation_atlas.algorithms.class_atlas import class_slug, comparison_slug
from activation_atlas.algorithms.layout import THREADED_KNN_BACKEND
from activation_atlas.models.kinds import model_kind
from activation_atlas.workflow import paths


def layer_section(config: dict, section: str, layer: str) -> dict:
    """A config section with the layer's entry of its `per_layer` overrides applied (and no per_layer)."""
    values = {k: v for k, v in config[section].items() if k != "per_layer"}
    values.update(config[section].get("per_layer", {}).get(layer, {}))
    return values


def umap_settings(config: dict, layer: str | None = None) -> dict:
    """The layer's UMAP settings: the layout section with its overrides, less the plot size (layer None:
    no override, as for an aligned atlas's one layout)."""
    settings = layer_section(config, "layout", layer)
    del settings["scatter_size"]
    if settings["backend"] == THREADED_KNN_BACKEND:
        # Its neighbour graph depends on how many parts the search is split into: the config's threads,
        # whatever the scheduler grants, and recorded with the layout.
        settings["knn_threads"] = config["threads"]
    return settings


def layout_threads(umap: dict) -> int:
    """Threads a layout job asks for: those its nearest-neighbour search runs on (a seeded UMAP's
    optimisation runs on one)."""
    return umap.get("knn_threads", 1)


def dataset_dir(config: dict) -> str:
    """Where the workflow keeps a generated or downloaded dataset."""
    return paths.dataset_dir(config["dataset"]["name"])


def dataset_input(config: dict) -> str:
    """The dataset folder a run's jobs read: the user's own, or the one the workflow made."""
    dataset = config["dataset"]
    return dataset["path"] if dataset["kind"] == "image_folder" else dataset_dir(config)


def images_dir(config: dict) -> str:
    """The folder of images activations are extracted from."""
    dataset = config["dataset"]
    if dataset["kind"] == "generated":
        return f"{dataset_dir(config)}/{config['extract']['split']}"
    root = dataset_input(config)
    return os.path.join(root, dataset["subdir"]) if dataset["subdir"] else root


def image_selection(config: dict) -> dict:
    """Which images of the dataset the run uses (an ImageSelection)."""
    dataset = config["dataset"]
    return {
        "folder": images_dir(config),
        "layout": dataset["layout"],
        "max_images": dataset["max_images"],
        "stratified": dataset["stratified"],
    }


def attack_pairs(config: dict) -> dict[str, list]:
    """The attacked comparisons by their slug (the attack's folder and wildcard value): [a, b] as configured;
    none unless attacks.enabled."""
    attacks = config["attacks"]
    if not attacks["enabled"]:
        return {}
    return {comparison_slug(pair): list(pair) for pair in (attacks["pairs"] or config["class_atlas"]["comparisons"])}


def picture_folder(config: dict, slug: str) -> str | None:
    """The folder of the pictures chosen for an attacked pair (attacks.pictures/<a>_vs_<b>), if any."""
    pictures = config["attacks"]["pictures"]
    return None if pictures is None else f"{pictures}/{slug}"


def attack_source(config: dict) -> dict:
    """Where the attacks take their images of class a from (stages.attacks.AttackImages.source): the
    folder attacks.images; else a generated dataset's split the atlas was not made from; else the
    atlas's own images. With whether the network was trained on them (seen_in_training)."""
    images, dataset = config["attacks"]["images"], config["dataset"]
    if images is not None:
        source = {"kind": "folder", "folder": images, "layout": "class_folders"}
    elif dataset["kind"] == "generated":
        other = "held_out" if config["extract"]["split"] == "train" else "train"
        source = {"kind": "other_split", "folder": f"{dataset_dir(config)}/{other}", "layout": "class_folders"}
    else:
        source = {"kind": "atlas", "folder": images_dir(config), "layout": dataset["layout"]}
    return source | {"seen_in_training": seen_in_training(config, source)}


def seen_in_training(config: dict, source: dict) -> bool | None:
    """attacks.images_seen_in_training where given; else, for a network the workflow trains (on the
    dataset's train folder), whether the attacked images are that folder's; else not known (None)."""
    stated = config["attacks"]["images_seen_in_training"]
    if stated is not None or not model_kind(config["model"]["kind"]).trained or source["kind"] == "folder":
        return stated
    return source["folder"] == f"{dataset_dir(config)}/train"


def model_input_size(config: dict) -> int:
    """The side of the images the model is fed: model.input_size, else the generated dataset's
    image_size, else 224."""
    if config["model"]["input_size"] is not None:
        return config["model"]["input_size"]
    return config["dataset"]["image_size"] if config["dataset"]["kind"] == "generated" else 224


def viewer_page(config: dict, resize: str) -> dict:
    """The viewer's PageOptions from a run's (or an aligned run's) montage and viewer sections;
    `resize`: how the sample images are fitted to their thumbnails (the model's)."""
    montage, viewer = config["montage"], config["viewer"]
    return {
        "run": config["run"],
        "cell_px": montage["cell_px"],
        "tile_px": montage["tile_px"],
        "background": montage["background"],
        "min_icon_px": viewer["min_icon_px"],
        "sample_px": viewer["sample_px"],
        "filter_top_k": viewer["filter_top_k"],
        "resize": resize,
    }


def class_atlases(config: dict) -> dict[str, list]:
    """The class atlases and comparisons, by a file-name-safe slug: the classes each shows, as configured
    (names or indices), one for a class atlas, two for a comparison."""
    section = config["class_atlas"]
    return {
        **{class_slug(str(spec)): [spec] for spec in section["classes"]},
        **{comparison_slug(pair): list(pair) for pair in section["comparisons"]},
    }


def named_classes(config: dict) -> list:
    """Every class the class atlases and comparisons name: extraction attributes these whatever else it
    leaves out."""
    return [spec for specs in class_atlases(config).values() for spec in specs]


def model_weights(config: dict) -> str | None:
    """The weights file the model is loaded from: the one the workflow trains or downloads (in the
    model's folder), a local checkpoint, or none (torchvision fetches its own, other kinds need none)."""
    model = config["model"]
    if model_kind(model["kind"]).trained or model["url"]:
        return paths.ModelFiles(model["name"]).weights
    return model["checkpoint"] or None


def viewer_atlases(
    files: paths.RunFiles,
    layers: dict[str, list[int]],
    class_atlases: dict[str, tuple],
    dictionary_layers: tuple[str, ...] = (),
) -> list[dict]:
    """The viewer's atlases (stages.viewer.Viewer.atlases): each layer's grids as zoom levels, then each
    class atlas and comparison, by slug: (the classes it shows as configured, its layer, its grid size),
    then the feature atlas of each layer with a dictionary."""
    dictionaries = {layer: files.dictionary(layer, "dictionary.h5") for layer in dictionary_layers}
    return (
        [
            {
                "id": layer,
                "title": f"layer {layer}",
                "levels": [[grid, files.cells(layer, grid), files.tiles(layer, grid)] for grid in grids],
                **({"dictionary": dictionaries[layer]} if layer in dictionaries else {}),
            }
            for layer, grids in layers.items()
        ]
        + [
            {
                "id": slug,
                "title": (f"class {shown[0]}" if len(shown) == 1 else f"{shown[1]} ← vs → {shown[0]}") + f" ({layer})",
                "levels": [[grid, files.class_atlas(slug, "cells.h5"), files.class_atlas(slug, "tiles")]],
            }
            for slug, (shown, layer, grid) in class_atlases.items()
        ]
        + [
            {
                "id": f"{layer}-features",
                "title": f"features of {layer} (dictionary)",
                "levels": [[None, files.dictionary(layer, "cells.h5"), files.dictionary(layer, "tiles")]],
                "dictionary": path,
                "features_of": layer,
            }
            for layer, path in dictionaries.items()
        ]
    )


# The dictionary section's keys the learning job uses (the others lay out and draw its feature atlas).
DICTIONARY_LEARNING_KEYS = (
    "expansion",
    "atoms",
    "top_k",
    "epochs",
    "batch_size",
    "learning_rate",
    "held_out",
    "dense_frequency",
    "top_examples",
)


def dictionary_learning(config: dict, layer: str) -> dict:
    """The dictionary section's learning settings for one layer, its per_layer overrides applied."""
    section = layer_section(config, "dictionary", layer)
    return {key: section[key] for key in DICTIONARY_LEARNING_KEYS}


def feature_layout(config: dict) -> dict:
    """The UMAP settings of the feature atlases' layouts (the atoms' directions, by cosine)."""
    section = config["dictionary"]
    return {"n_neighbors": section["n_neighbors"], "min_dist": section["min_dist"], "metric": "cosine"}
