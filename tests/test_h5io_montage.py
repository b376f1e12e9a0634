import hashlib
import json
import time

import h5py
import numpy as np
import pytest

from activation_atlas import __version__
from activation_atlas.h5io import create_h5, write_dataset
from activation_atlas.montage import atlas_image, trustworthiness_on_sample


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
    time.sleep(1.1)      # object timestamps, if written, would differ
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
    red[1, ..., 2] = 255          # the second icon is magenta
    image = np.asarray(atlas_image(red, np.array([0, 2]), np.array([0, 1]), 3, 4, (0, 0, 0)))
    assert image.shape == (12, 12, 3)
    assert image[8:12, 0:4].tolist() == red[0].tolist()      # row 0, col 0: bottom left
    assert image[0:4, 4:8].tolist() == red[1].tolist()       # row 2, col 1: top middle
    assert image[0:4, 0:4].max() == 0                        # empty cells show the background


def test_atlas_resizes_icons_to_the_cell_size():
    icons = np.full((1, 8, 8, 3), 200, dtype=np.uint8)
    image = np.asarray(atlas_image(icons, np.array([0]), np.array([0]), 1, 5))
    assert image.shape == (5, 5, 3) and (image == 200).all()


def test_trustworthiness_is_high_for_a_faithful_layout_and_low_for_a_random_one(rng):
    data = rng.normal(size=(400, 2))
    assert trustworthiness_on_sample(data, data * 3, 300, 10, "euclidean", 0) > 0.99
    assert trustworthiness_on_sample(data, rng.normal(size=(400, 2)), 300, 10, "euclidean", 0) < 0.7
