"""From the validated config to what one job uses. The rules call these to fill their `params`
(a section with a layer's `per_layer` overrides applied), and the render stage turns the resolved
render section into typed settings; no stage ever sees the config itself."""
from __future__ import annotations

import os


def layer_section(config: dict, section: str, layer: str) -> dict:
    """A config section with the layer's entry of its `per_layer` overrides applied (and no per_layer)."""
    values = {k: v for k, v in config[section].items() if k != "per_layer"}
    values.update(config[section].get("per_layer", {}).get(layer, {}))
    return values


def umap_settings(config: dict, layer: str) -> dict:
    """The layer's UMAP settings: the layout section with its overrides, less the plot size."""
    settings = layer_section(config, "layout", layer)
    del settings["scatter_size"]
    return settings


def dataset_dir(config: dict) -> str:
    """Where the workflow keeps a generated or downloaded dataset."""
    return f"resources/datasets/{config['dataset']['name']}"


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
    return {"folder": images_dir(config), "layout": dataset["layout"], "max_images": dataset["max_images"],
            "stratified": dataset["stratified"]}
