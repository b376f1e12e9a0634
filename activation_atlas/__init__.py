"""Activation atlases of image networks: extraction, layout, binning, feature inversion, montage.

From Python (torch and UMAP are imported when first used):

    import activation_atlas as aa
    acts = aa.extract(model, ["layer3"], images, attribution=True)
    atlas = aa.atlas(model, "layer3", acts, grid=20)

See docs/python-api.md."""

__version__ = "0.1.0"

# Public name → the module that defines it, imported on first use.
EXPORTS = {
    "extract": "activation_atlas.api.method",
    "atlas": "activation_atlas.api.method",
    "class_atlas": "activation_atlas.api.class_atlas",
    "comparison": "activation_atlas.api.class_atlas",
    "viewer": "activation_atlas.api.method",
    "Model": "activation_atlas.api.network",
    "Activations": "activation_atlas.api.results",
    "Atlas": "activation_atlas.api.results",
    "ClassAtlas": "activation_atlas.api.results",
    "RunError": "activation_atlas.runtime",
}
__all__ = [*EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'activation_atlas' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(EXPORTS[name]), name)


def __dir__():
    return sorted(__all__)
