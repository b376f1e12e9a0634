"""Activation atlases of image networks: extraction, layout, binning, feature inversion, montage."""

__version__ = "0.1.0"
