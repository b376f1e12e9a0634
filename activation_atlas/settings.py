"""From the validated config to what one job uses. The rules call these to fill their `params`
(a section with a layer's `per_layer` overrides applied), and the render stage turns the resolved
render section into typed settings; no stage ever sees the config itself."""
from __future__ import annotations


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
