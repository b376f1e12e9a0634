"""Icons → the atlas image, and the quality figures of an atlas.

Orientation: the atlas is drawn like the layout's scatter plot — x (grid column) grows to the right,
y (grid row) grows upwards, so grid row 0 is the bottom row of the image.

Large atlases are drawn tile by tile (squares of whole cells), so no step holds the full-resolution
image: the tiles are written as PNGs, and the single atlas image is assembled from them, downscaled
where it would exceed montage.max_image_px.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DENSITY_MODES = ("none", "size", "opacity")


def density_factors(count: np.ndarray, floor: float) -> np.ndarray:
    """Per icon in [floor, 1]: log(1 + count) / log(1 + the largest count), so the densest cell is 1."""
    count = np.asarray(count, dtype=np.float64)
    if not len(count):
        return count
    return np.maximum(np.log1p(count) / np.log1p(max(count.max(), 1.0)), floor)


def draw_icon(
    canvas: np.ndarray, icon: np.ndarray, top: int, left: int, cell_px: int, factor: float, density: str, background
) -> None:
    """Paint one icon into its cell of `canvas`: full size, shrunk (density "size") or faded into the
    background (density "opacity") by `factor`."""
    side = cell_px if density != "size" else max(1, int(round(cell_px * factor)))
    if icon.shape[0] != side:
        icon = np.asarray(Image.fromarray(icon).resize((side, side), Image.LANCZOS))
    if density == "opacity":
        icon = np.round(icon * factor + np.asarray(background, dtype=np.float64) * (1.0 - factor))
    offset = (cell_px - side) // 2
    canvas[top + offset : top + offset + side, left + offset : left + offset + side] = icon


def atlas_image(
    icons: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    grid_size: int,
    cell_px: int,
    background=(255, 255, 255),
    factors: np.ndarray | None = None,
    density: str = "none",
    first_row: int = 0,
    first_col: int = 0,
    n_rows: int | None = None,
    n_cols: int | None = None,
) -> Image.Image:
    """The atlas, or the window of it n_rows × n_cols cells from image row first_row (counted from the
    top) and column first_col: each icon (M, n, n, 3) resized to cell_px and placed at its cell."""
    n_rows = grid_size if n_rows is None else n_rows
    n_cols = grid_size if n_cols is None else n_cols
    canvas = np.empty((n_rows * cell_px, n_cols * cell_px, 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    for k, (icon, row, col) in enumerate(zip(icons, rows, cols)):
        top = (grid_size - 1 - int(row) - first_row) * cell_px
        left = (int(col) - first_col) * cell_px
        factor = 1.0 if factors is None else float(factors[k])
        draw_icon(canvas, icon, top, left, cell_px, factor, density, background)
    return Image.fromarray(canvas)


def tile_layout(grid_size: int, cell_px: int, tile_px: int) -> tuple[int, int]:
    """(cells per tile side, tiles per atlas side) for tiles of at most tile_px (at least one cell)."""
    tile_cells = max(1, tile_px // cell_px)
    return tile_cells, -(-grid_size // tile_cells)


def tile_name(tile_row: int, tile_col: int) -> str:
    """Tile file name; tile rows count from the top of the atlas image, columns from the left."""
    return f"{tile_row}_{tile_col}.png"


def trustworthiness_on_sample(
    activations: np.ndarray, xy: np.ndarray, sample: int, n_neighbors: int, metric: str, seed: int
) -> float:
    """scikit-learn's trustworthiness of the layout on a seeded subsample of the points."""
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(xy), size=min(sample, len(xy)), replace=False))
    neighbours = min(n_neighbors, len(chosen) // 2 - 1)
    return float(
        trustworthiness(
            np.asarray(activations[chosen], dtype=np.float64),
            np.asarray(xy[chosen], dtype=np.float64),
            n_neighbors=neighbours,
            metric=metric,
        )
    )
