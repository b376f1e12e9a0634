"""Icons → the atlas image, and the quality figures of an atlas.

Orientation: the atlas is drawn like the layout's scatter plot — x (grid column) grows to the right,
y (grid row) grows upwards, so grid row 0 is the bottom row of the image.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def atlas_image(icons: np.ndarray, rows: np.ndarray, cols: np.ndarray, grid_size: int, cell_px: int,
                background=(255, 255, 255)) -> Image.Image:
    """A (G·cell_px)² RGB image with each icon (M, n, n, 3) resized to cell_px and placed at its cell."""
    side = grid_size * cell_px
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    for icon, row, col in zip(icons, rows, cols):
        if icon.shape[0] != cell_px:
            icon = np.asarray(Image.fromarray(icon).resize((cell_px, cell_px), Image.LANCZOS))
        top = (grid_size - 1 - int(row)) * cell_px
        left = int(col) * cell_px
        canvas[top:top + cell_px, left:left + cell_px] = icon
    return Image.fromarray(canvas)


def trustworthiness_on_sample(activations: np.ndarray, xy: np.ndarray, sample: int, n_neighbors: int,
                              metric: str, seed: int) -> float:
    """scikit-learn's trustworthiness of the layout on a seeded subsample of the points."""
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(xy), size=min(sample, len(xy)), replace=False))
    neighbours = min(n_neighbors, len(chosen) // 2 - 1)
    return float(trustworthiness(np.asarray(activations[chosen], dtype=np.float64),
                                 np.asarray(xy[chosen], dtype=np.float64),
                                 n_neighbors=neighbours, metric=metric))
