"""Sparse dictionaries: planted atoms recovered, the streamed training batches, the atoms' statistics
against a direct computation, the feature atlas's placement, and the stage's files on config/ci.yaml."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from activation_atlas.algorithms.atoms import atom_statistics, top_purity
from activation_atlas.algorithms.binning import distinct_cells
from activation_atlas.algorithms.dictionary import (
    SaeEncoder,
    SaeSettings,
    TrainingBatches,
    held_out_images,
    sae_settings,
    train_dictionary,
)
from activation_atlas.runtime import RunError


def quiet(_line):
    pass


def planted_activations(rows: int, draw: int = 0, channels: int = 32, atoms: int = 48, k: int = 3):
    """48 unit directions (always the same) and activations made of k of them each, with positive
    coefficients (draw picks which), scaled far from unit norm: the dictionary must not depend on the
    layer's units."""
    directions = np.random.default_rng(0).normal(size=(atoms, channels))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rng = np.random.default_rng([1, draw])
    chosen = np.stack([rng.choice(atoms, k, replace=False) for _ in range(rows)])
    coefficients = rng.uniform(0.5, 2.0, size=(rows, k))
    activations = np.einsum("nk,nkc->nc", coefficients, directions[chosen]) * 7.0
    return directions, activations.astype(np.float32)


@pytest.fixture(scope="module")
def planted():
    directions, activations = planted_activations(10_000)
    settings = SaeSettings(atoms=96, top_k=3, epochs=30, batch_size=128, learning_rate=1e-2)
    sae = train_dictionary(activations, np.ones(len(activations), bool), settings, 5, "cpu", quiet)
    return directions, activations, settings, sae


def test_a_dictionary_learned_on_sparse_combinations_of_known_directions_finds_each_of_them(planted):
    directions, _, _, sae = planted
    np.testing.assert_allclose(np.linalg.norm(sae.decoder, axis=1), 1.0, atol=1e-5)
    best = (directions @ sae.decoder.T).max(axis=1)
    assert best.min() >= 0.95, np.sort(best)[:5]


def test_learning_is_byte_identical_for_one_seed_and_differs_for_another(planted):
    directions, activations, settings, sae = planted
    few = SaeSettings(atoms=96, top_k=3, epochs=1, batch_size=128, learning_rate=1e-2)
    rows = np.ones(len(activations), bool)
    first, again, other = (train_dictionary(activations, rows, few, seed, "cpu", quiet) for seed in (5, 5, 6))
    for name in ("decoder", "encoder_weight", "encoder_bias"):
        assert getattr(first, name).tobytes() == getattr(again, name).tobytes()
        assert getattr(first, name).tobytes() != getattr(other, name).tobytes()
    assert first.loss_per_epoch == again.loss_per_epoch


def test_encoding_reconstructs_held_out_activations_in_the_layers_units_with_at_most_k_atoms(planted):
    directions, _, settings, sae = planted
    _, unseen = planted_activations(500, draw=9)  # other combinations of the same directions
    encoder = SaeEncoder.of(sae, "cpu")
    codes, reconstruction = encoder.encode(unseen)
    assert int((codes > 0).sum(dim=1).max()) <= settings.top_k
    residual = np.square(unseen - reconstruction.numpy()).sum()
    assert residual / np.square(unseen - unseen.mean(axis=0)).sum() < 0.1


def test_training_batches_hold_each_training_row_once_per_epoch_in_an_order_that_changes(planted):
    rows = np.arange(1000, dtype=np.float32)[:, None].repeat(2, axis=1)
    train = np.ones(1000, bool)
    train[::7] = False
    batches = TrainingBatches(rows, train, scale=2.0, batch_size=64, seed=3, block_rows=100)
    orders = []
    for epoch in range(2):
        batches.epoch = epoch
        seen = [batch.numpy() for batch in batches]
        assert all(len(batch) == 64 for batch in seen[:-1]) and 0 < len(seen[-1]) <= 64
        order = (np.concatenate(seen)[:, 0] * 2.0).astype(int)
        assert sorted(order) == list(np.flatnonzero(train))
        orders.append(order)
    assert list(orders[0]) != list(orders[1])


def test_held_out_images_keep_every_activation_of_an_image_on_one_side():
    image_index = np.repeat(np.arange(50), 3)
    held = held_out_images(image_index, 0.2, seed=1)
    assert len(np.unique(image_index[held])) == 10
    assert not set(image_index[held]) & set(image_index[~held])
    assert (held_out_images(image_index, 0.2, seed=1) == held).all()
    assert not (held_out_images(image_index, 0.2, seed=2) == held).all()
    assert held_out_images(image_index, 1.0, seed=1).sum() == 49 * 3  # never all
    with pytest.raises(RunError, match="at least 2 images"):
        held_out_images(np.zeros(5, dtype=int), 0.1, seed=1)


def test_top_k_must_be_below_the_atoms_the_layer_gets():
    section = {"atoms": None, "expansion": 2, "top_k": 16, "epochs": 1, "batch_size": 8, "learning_rate": 0.1}
    assert sae_settings(section, 9, "conv3").atoms == 18
    with pytest.raises(RunError, match=r"dictionary.top_k = 16 for conv3: .* 16 \(expansion 2 × 8 channels\)"):
        sae_settings(section, 8, "conv3")


def test_atom_statistics_from_blocks_match_a_direct_computation(planted):
    _, activations, _, sae = planted
    x = activations[:300]
    rng = np.random.default_rng(4)
    labels = rng.integers(-1, 4, size=len(x))
    held = rng.random(len(x)) < 0.3
    attribution = rng.normal(size=(len(x), 5)).astype(np.float32)
    encoder = SaeEncoder.of(sae, "cpu")
    stats, quality = atom_statistics(
        x, labels, 4, held, encoder, 6, attribution=attribution, n_logits=5, dense_frequency=0.05, log=quiet,
        block_rows=37,
    )  # fmt: skip
    codes, reconstruction = (t.numpy().astype(np.float64) for t in encoder.encode(x))
    firing = codes > 0
    np.testing.assert_array_equal(stats.fires, firing.sum(axis=0))
    np.testing.assert_allclose(stats.frequency, firing.mean(axis=0))
    mean = np.where(firing.any(axis=0), codes.sum(axis=0) / np.maximum(firing.sum(axis=0), 1), 0)
    np.testing.assert_allclose(stats.mean_activation, mean, rtol=1e-5)
    for atom in range(codes.shape[1]):
        expected = np.bincount(labels[firing[:, atom] & (labels >= 0)], minlength=4)
        np.testing.assert_array_equal(stats.class_histogram[atom], expected)
        strongest = np.argsort(-codes[:, atom], kind="stable")[: int(min(6, firing[:, atom].sum()))]
        assert set(stats.top_rows[atom][stats.top_rows[atom] >= 0]) == set(strongest)
        if firing[:, atom].any():
            weighted = codes[:, atom] @ attribution / codes[:, atom].sum()
            np.testing.assert_allclose(stats.attribution[atom], weighted, rtol=1e-4, atol=1e-6)
    centred = x[held] - x[held].mean(axis=0)
    explained = 1 - np.square(x[held] - reconstruction[held]).sum() / np.square(centred).sum()
    assert quality.explained_variance == pytest.approx(explained, abs=1e-5)
    assert quality.mean_l0 == pytest.approx(firing[held].sum(axis=1).mean())
    assert quality.dead_atoms == int((~firing.any(axis=0)).sum())
    assert quality.dense_atoms == int((firing.mean(axis=0) > 0.05).sum())
    assert (quality.held_out_activations, quality.training_activations) == (held.sum(), (~held).sum())


def test_each_atom_gets_a_cell_of_its_own_near_its_place_in_the_layout():
    xy = np.random.default_rng(2).random((40, 2))
    grid, row, col = distinct_cells(xy, 0.6)
    assert grid == 9  # ceil(sqrt(40 / 0.6))
    assert len(set(zip(row, col))) == 40
    centres = np.stack([(col + 0.5) / grid, (row + 0.5) / grid], axis=1)
    assert np.abs(centres - xy).max() < 3 / grid


def test_a_classs_features_are_its_most_attributed_live_atoms_with_a_positive_attribution():
    from activation_atlas.stages.dictionary import class_features

    attribution = np.array([[0.5, -1.0], [2.0, -0.5], [9.0, 9.0], [-0.1, 0.2]])
    listed = class_features(attribution, np.array([0, 1, 3]), ["cat", "dog"], top=2)  # atom 2 is dead
    assert listed == {"cat": [[1, 2.0], [0, 0.5]], "dog": [[3, 0.2]]}


def test_the_purity_of_top_rows_is_the_share_of_their_most_common_label():
    labels = np.array([0, 0, 1, 2, -1, 1])
    top_rows = np.array([[0, 1, 2, -1], [2, 5, 3, 4], [4, -1, -1, -1]])
    purity = top_purity(top_rows, labels)
    np.testing.assert_allclose(purity[:2], [2 / 3, 2 / 3])
    assert np.isnan(purity[2])  # no labelled row


@pytest.mark.workflow
def test_the_ci_run_learns_the_dictionary_of_its_layer_and_draws_its_feature_atlas(first_run):
    import h5py

    from activation_atlas.formats.cells import read_cells
    from activation_atlas.formats.dictionary import read_dictionary
    from tools.runs import load_config

    config = load_config("config/ci.yaml")
    (layer,) = config["dictionary"]["layers"]
    run = first_run / "results" / config["run"]
    folder = run / "dictionary" / layer
    dictionary = read_dictionary(folder / "dictionary.h5")
    quality, stats = dictionary.quality, dictionary.statistics
    assert len(dictionary.sae.loss_per_epoch) == config["dictionary"]["epochs"]
    assert 0.5 < quality.explained_variance <= 1 and 0 < quality.mean_l0 <= config["dictionary"]["top_k"]
    assert quality.dead_atoms == int((stats.fires == 0).sum()) < len(stats.fires)
    with h5py.File(run / "activations" / f"{layer}.h5", "r") as f:
        assert quality.held_out_activations + quality.training_activations == len(f["activations"])
    cells = read_cells(folder / "cells.h5")
    with h5py.File(folder / "cells.h5", "r") as f:
        atoms, samples, positions = f["atom"][:], f["sample_images"][:], f["sample_positions"][:]
    with h5py.File(run / "activations" / f"{layer}.h5", "r") as f:
        image_index, position, spatial = f["image_index"][:], f["position"][:], tuple(f.attrs["spatial_size"])
    # Each sample is an image where the atom fires at the position its crop is centred on.
    taken = {(int(i), *map(int, p)) for i, p in zip(image_index, position)}
    for images, places in zip(samples, positions):
        for image, place in zip(images[images >= 0], places[images >= 0]):
            assert (int(image), int(place[0]), int(place[1])) in taken and tuple(place[2:]) == spatial
    live = np.flatnonzero(stats.fires > 0)
    assert sorted(atoms) == list(live)
    assert len(set(zip(cells.row, cells.col))) == len(live)
    np.testing.assert_array_equal(cells.count, stats.fires[atoms])
    with h5py.File(folder / "icons.h5", "r") as f:
        assert len(f["icons"]) == len(live) and np.isfinite(f["fidelity"][:]).all()
    assert (folder / "atlas.png").stat().st_size > 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {key: metrics[key] for key in asdict(quality)} == asdict(quality)
    assert metrics["live_atoms"] == len(live) and metrics["atoms"] == len(stats.fires)
    assert 0 < metrics["mean_atom_class_purity"] <= 1 and -1 <= metrics["mean_icon_fidelity"] <= 1
    channels = dictionary.sae.decoder.shape[1]
    kinds = {"neurons": channels, "atoms": len(live)} | {f"cells_grid{g}": None for g in config["grid"]["sizes"]}
    assert set(metrics["units"]) == set(kinds)
    for kind, figures in metrics["units"].items():
        assert figures["units"] == (kinds[kind] or figures["units"]) > 0
        assert 0 < figures["mean_top_class_purity"] <= 1 and -1 <= figures["mean_icon_fidelity"] <= 1
    assert metrics["units"]["atoms"]["mean_top_class_purity"] == metrics["mean_atom_class_purity"]
    card = json.loads((run / "model.json").read_text())
    assert list(metrics["class_features"]) == card["classes"]
    for name, atoms in metrics["class_features"].items():
        k = card["classes"].index(name)
        for atom, value in atoms:
            assert stats.fires[atom] > 0 and value > 0 and stats.attribution[atom, k] == pytest.approx(value, abs=1e-6)


def test_the_viewer_lists_each_cells_strongest_atoms_and_each_atoms_strongest_cells(tmp_path):
    from activation_atlas.formats.cells import Cells, write_cells
    from activation_atlas.viewer_page.features import layer_ties

    # A dictionary whose atoms are the channels: a vector's codes are its two largest positive channels.
    identity = np.eye(4, dtype=np.float32)
    encoder = SaeEncoder(identity, identity, np.zeros(4, np.float32), top_k=2, scale=1.0, device="cpu")
    levels = []
    for grid, means in ((2, [[3, 1, 2, 0], [0, 0, 0, 5]]), (3, [[1, 4, 0, 0], [0, 2, 0, 0], [6, 0, 0, 1]])):
        path = tmp_path / f"grid{grid}.h5"
        cells = Cells(grid, np.arange(len(means)), np.zeros(len(means), int), np.ones(len(means), int),
                      np.array(means, np.float32), np.ones((len(means), 1), int), len(means))  # fmt: skip
        write_cells(path, cells, np.full((len(means), 1), -1), None, 0, classes=["a"], layer="l", seed=0)
        levels.append((grid, path))
    atoms_of_cells, cells_of_atom = layer_ties(levels, encoder)
    assert atoms_of_cells == {
        2: [[[0, 3.0], [2, 2.0]], [[3, 5.0]]],
        3: [[[1, 4.0], [0, 1.0]], [[1, 2.0]], [[0, 6.0], [3, 1.0]]],
    }
    # [grid, col, row, code], strongest first.
    assert cells_of_atom[0] == [[3, 0, 2, 6.0], [2, 0, 0, 3.0], [3, 0, 0, 1.0]]
    assert cells_of_atom[1] == [[3, 0, 0, 4.0], [3, 0, 1, 2.0]]
    assert cells_of_atom[3] == [[2, 0, 1, 5.0], [3, 0, 2, 1.0]]


def test_an_atoms_samples_are_its_strongest_distinct_images_each_at_its_strongest_activation():
    from activation_atlas.stages.dictionary import sample_positions, top_images

    image_index = np.array([7, 7, 8, 9, 9, 3])
    top_rows = np.array([[1, 0, 4, 2, -1], [5, -1, -1, -1, -1]])  # strongest first
    samples, rows = top_images(top_rows, image_index, per_atom=2)
    np.testing.assert_array_equal(samples, [[7, 9], [3, -1]])
    np.testing.assert_array_equal(rows, [[1, 4], [5, -1]])
    position = np.array([[0, 0], [1, 2], [0, 1], [3, 3], [2, 0], [1, 1]])
    np.testing.assert_array_equal(
        sample_positions(rows, position, (4, 5)), [[[1, 2, 4, 5], [2, 0, 4, 5]], [[1, 1, 4, 5], [-1, -1, -1, -1]]]
    )


def test_a_top_activations_thumbnail_is_the_crop_around_it(tmp_path):
    from PIL import Image

    from activation_atlas.data.image_folder import load_image
    from activation_atlas.viewer_page.page import crop_fraction, thumbnail

    path = tmp_path / "image.png"
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    assert crop_fraction((8, 8)) == 0.5 and crop_fraction((32, 32)) == 0.25 and crop_fraction((1, 1)) == 1.0
    whole = load_image(path, 32)  # a crop of half the side, seen at 16 px: taken from the image at 32 px
    np.testing.assert_array_equal(thumbnail(path, (0, 3, 5, 8, 8), 16, "resize"), whole[6:22, 14:30])
    np.testing.assert_array_equal(thumbnail(path, (0, 0, 7, 8, 8), 16, "resize"), whole[0:16, 16:32])  # kept inside
    np.testing.assert_array_equal(thumbnail(path, (0,), 16, "resize"), load_image(path, 16))
