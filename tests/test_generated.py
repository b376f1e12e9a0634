import csv
import hashlib

import numpy as np
import pytest

from activation_atlas.data.generated import DEFAULT_CLASSES, class_specs, generate_dataset, image_rng, render_image
from activation_atlas.data.image_folder import load_image, scan_image_folder


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_same_seed_gives_identical_files(tmp_path):
    counts = {"train": 3, "held_out": 1}
    generate_dataset(tmp_path / "a", seed=5, image_size=32, images_per_class=counts)
    generate_dataset(tmp_path / "b", seed=5, image_size=32, images_per_class=counts)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_other_seed_gives_other_images(tmp_path):
    counts = {"train": 2, "held_out": 1}
    generate_dataset(tmp_path / "a", seed=5, image_size=32, images_per_class=counts)
    generate_dataset(tmp_path / "b", seed=6, image_size=32, images_per_class=counts)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".png")) == len([k for k in a if k.endswith(".png")])


def test_an_image_does_not_depend_on_how_many_are_generated():
    spec = class_specs()[0]
    first, _ = render_image(spec, image_rng(1, "train", 7), 48)
    again, _ = render_image(spec, image_rng(1, "train", 7), 48)
    other, _ = render_image(spec, image_rng(1, "held_out", 7), 48)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_image_folder_layout_labels_and_factor_table(tmp_path):
    table = generate_dataset(tmp_path, seed=0, image_size=40, images_per_class={"train": 2, "held_out": 1})
    train = scan_image_folder(tmp_path / "train")
    held_out = scan_image_folder(tmp_path / "held_out")
    assert len(train.classes) == len(DEFAULT_CLASSES) >= 10
    assert len(train) == 2 * len(DEFAULT_CLASSES) and len(held_out) == len(DEFAULT_CLASSES)
    assert load_image(train.files[0], 40).shape == (40, 40, 3)
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == len(train) + len(held_out)
    by_file = {r["file"]: r for r in rows}
    for path, label in zip(train.files, train.labels):
        row = by_file[str(path.relative_to(tmp_path))]
        # The table's label is the label the image-folder reader assigns.
        assert int(row["label"]) == label
        assert row["class"] == train.classes[label] == f"{row['colour']}_{row['texture']}_{row['shape']}"
        assert 0 < float(row["x"]) < 1 and 0 < float(row["y"]) < 1


def test_every_class_combines_distinct_factors():
    specs = class_specs()
    assert len({s.shape for s in specs}) >= 4
    assert len({s.colour for s in specs}) >= 4
    assert len({s.texture for s in specs}) >= 4
    # No single factor identifies every class.
    for factor in ("shape", "colour", "texture"):
        assert len({getattr(s, factor) for s in specs}) < len(specs)


def test_object_colour_shows_in_the_image():
    spec = next(s for s in class_specs() if s.colour == "red" and s.texture == "checks")
    pixels, factors = render_image(spec, image_rng(0, "train", 0), 64)
    cy, cx = int(factors["y"] * 64), int(factors["x"] * 64)
    patch = pixels[cy - 3 : cy + 4, cx - 3 : cx + 4].reshape(-1, 3).astype(int)
    bright = patch[patch.sum(1) > 150]
    assert (bright[:, 0] > bright[:, 1] + 60).all()


def test_unknown_factor_is_an_error_naming_valid_values():
    with pytest.raises(ValueError, match="unknown shape 'hexagon'; valid shapes: triangle"):
        class_specs([("hexagon", "red", "solid")])
