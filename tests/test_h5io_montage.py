import hashlib
import json
import time

import h5py
import numpy as np
import pytest

from activation_atlas import __version__
from activation_atlas.algorithms.montage import atlas_image, trustworthiness_on_sample
from activation_atlas.h5io import create_h5, write_dataset


def write_example(path):
    with create_h5(path, "example", layer="conv2", seed=3, config={"grid": {"sizes": [4]}}) as f:
        write_dataset(f, "values", np.arange(12, dtype=np.float32).reshape(3, 4), "activation", "row, channel")


def test_files_are_self_describing(tmp_path):
    write_example(tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f.attrs["stage"] == "example" and f.attrs["package_version"] == __version__
        assert f.attrs["seed"] == 3 and json.loads(f.attrs["config"]) == {"grid": {"sizes": [4]}}
        assert f["values"].attrs["unit"] == "activation" and f["values"].attrs["axes"] == "row, channel"


def test_identical_content_written_later_gives_identical_bytes(tmp_path):
    write_example(tmp_path / "a.h5")
    time.sleep(1.1)  # object timestamps, if written, would differ
    write_example(tmp_path / "b" / "a.h5")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "a.h5", tmp_path / "b" / "a.h5")]
    assert digest[0] == digest[1]


def test_an_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with create_h5(tmp_path / "a.h5", "example") as f:
            write_dataset(f, "values", np.zeros(3), "1", "row")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atlas_puts_row_zero_at_the_bottom_and_columns_left_to_right():
    red = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    red[1, ..., 2] = 255  # the second icon is magenta
    image = np.asarray(atlas_image(red, np.array([0, 2]), np.array([0, 1]), 3, 4, (0, 0, 0)))
    assert image.shape == (12, 12, 3)
    assert image[8:12, 0:4].tolist() == red[0].tolist()  # row 0, col 0: bottom left
    assert image[0:4, 4:8].tolist() == red[1].tolist()  # row 2, col 1: top middle
    assert image[0:4, 0:4].max() == 0  # empty cells show the background


def test_atlas_resizes_icons_to_the_cell_size():
    icons = np.full((1, 8, 8, 3), 200, dtype=np.uint8)
    image = np.asarray(atlas_image(icons, np.array([0]), np.array([0]), 1, 5))
    assert image.shape == (5, 5, 3) and (image == 200).all()


def test_trustworthiness_is_high_for_a_faithful_layout_and_low_for_a_random_one(rng):
    data = rng.normal(size=(400, 2))
    assert trustworthiness_on_sample(data, data * 3, 300, 10, "euclidean", 0) > 0.99
    assert trustworthiness_on_sample(data, rng.normal(size=(400, 2)), 300, 10, "euclidean", 0) < 0.7


def write_icons_and_cells(tmp_path, rng, grid_size, n_icons, icon_px=8):
    cells = rng.choice(grid_size * grid_size, size=n_icons, replace=False)
    cells.sort()
    rows, cols = (cells // grid_size).astype(np.int32), (cells % grid_size).astype(np.int32)
    icons = rng.integers(0, 256, size=(n_icons, icon_px, icon_px, 3), dtype=np.uint8)
    with create_h5(tmp_path / "icons.h5", "icons", grid_size=grid_size) as f:
        write_dataset(f, "row", rows, "cell", "icon")
        write_dataset(f, "col", cols, "cell", "icon")
        write_dataset(f, "icons", icons, "uint8 RGB", "icon, y, x, channel")
    with create_h5(tmp_path / "cells.h5", "cells", grid_size=grid_size) as f:
        write_dataset(f, "row", rows, "cell", "cell")
        write_dataset(f, "col", cols, "cell", "cell")
        write_dataset(f, "count", rng.integers(1, 100, size=n_icons), "activations", "cell")
    return icons, rows, cols


def montage_config(**montage):
    from activation_atlas.stages.atlas import Montage

    return Montage(
        **{
            "cell_px": 8,
            "background": [255, 255, 255],
            "density": "none",
            "density_floor": 0.2,
            "tile_px": 24,
            "max_image_px": 8192,
            **montage,
        }
    )


@pytest.mark.parametrize("grid_size", [1, 3, 7])
def test_tiles_put_together_are_the_atlas_image(tmp_path, rng, grid_size):
    from PIL import Image

    from activation_atlas.stages.atlas import montage

    icons, rows, cols = write_icons_and_cells(tmp_path, rng, grid_size, min(5, grid_size**2))
    montage(
        tmp_path / "icons.h5",
        tmp_path / "cells.h5",
        tmp_path / "atlas.png",
        tmp_path / "tiles",
        montage_config(),
        log=lambda _: None,
    )
    expected = np.asarray(atlas_image(icons, rows, cols, grid_size, 8))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "atlas.png")), expected)
    tiles_per_side = -(-grid_size // 3)  # 24 px tiles of 8 px cells: 3 cells a side
    names = sorted(p.name for p in (tmp_path / "tiles").iterdir())
    assert names == sorted(f"{r}_{c}.png" for r in range(tiles_per_side) for c in range(tiles_per_side))
    for r in range(tiles_per_side):
        for c in range(tiles_per_side):
            tile = np.asarray(Image.open(tmp_path / "tiles" / f"{r}_{c}.png"))
            assert np.array_equal(tile, expected[r * 24 : (r + 1) * 24, c * 24 : (c + 1) * 24])


def test_an_atlas_larger_than_max_image_px_is_downscaled_from_its_tiles(tmp_path, rng):
    from PIL import Image

    from activation_atlas.stages.atlas import montage

    icons, rows, cols = write_icons_and_cells(tmp_path, rng, 10, 30)
    montage(
        tmp_path / "icons.h5",
        tmp_path / "cells.h5",
        tmp_path / "atlas.png",
        tmp_path / "tiles",
        montage_config(max_image_px=40),
        log=lambda _: None,
    )
    small = np.asarray(Image.open(tmp_path / "atlas.png"), dtype=np.float64)
    full = np.asarray(atlas_image(icons, rows, cols, 10, 8), dtype=np.float64)
    assert small.shape == (40, 40, 3)
    # Each 4-pixel cell of the small image is a downscaled 8-pixel cell of the full one.
    assert np.abs(small - full.reshape(40, 2, 40, 2, 3).mean(axis=(1, 3))).mean() < 40


def test_density_shrinks_or_fades_the_icons_of_sparse_cells():
    from activation_atlas.algorithms.montage import density_factors

    factors = density_factors(np.array([1, 10, 100, 1000]), floor=0.2)
    assert factors[-1] == 1.0 and np.all(np.diff(factors) > 0) and factors.min() >= 0.2
    assert density_factors(np.array([1, 1000]), floor=0.5)[0] == 0.5
    black = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    one = np.array([0])
    shrunk = np.asarray(atlas_image(black, one, one, 1, 8, factors=np.array([0.5]), density="size"))
    assert (shrunk[2:6, 2:6] == 0).all() and (shrunk[0] == 255).all() and (shrunk[:, 0] == 255).all()
    faded = np.asarray(atlas_image(black, one, one, 1, 8, factors=np.array([0.25]), density="opacity"))
    assert (faded == round(255 * 0.75)).all()
