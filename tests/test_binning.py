import numpy as np
import pytest

from activation_atlas.algorithms.binning import bin_layout, cell_coordinates


def test_points_on_cell_edges_fall_in_exactly_one_cell():
    g = 4
    xy = np.array([[0.0, 0.0], [0.25, 0.5], [0.5, 0.75], [1.0, 1.0], [0.999999, 0.25], [1.0, 0.0]])
    row, col = cell_coordinates(xy, g)
    # A coordinate on an inner edge belongs to the upper cell; 1.0 belongs to the last cell.
    assert col.tolist() == [0, 1, 2, 3, 3, 3]
    assert row.tolist() == [0, 2, 3, 3, 1, 0]


def test_every_point_counted_once(rng):
    xy = rng.uniform(size=(5000, 2))
    xy[:50] = np.round(xy[:50] * 8) / 8  # many points exactly on edges, including 1.0
    acts = rng.normal(size=(5000, 3))
    cells = bin_layout(xy, acts, np.zeros(5000, dtype=int), 8, min_count=0, n_classes=1)
    assert cells.count.sum() == 5000
    assert len(set(zip(cells.row.tolist(), cells.col.tolist()))) == len(cells.count)
    assert cells.kept_fraction == 1.0


def test_cell_means_counts_and_class_histograms_match_a_direct_computation(rng):
    n, g = 2000, 5
    xy = rng.uniform(size=(n, 2))
    acts = rng.normal(size=(n, 4)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    cells = bin_layout(xy, acts, labels, g, min_count=0, n_classes=3)
    for r, c, count, mean, hist in zip(cells.row, cells.col, cells.count, cells.mean, cells.class_histogram):
        inside = (np.minimum((xy[:, 0] * g).astype(int), g - 1) == c) & (
            np.minimum((xy[:, 1] * g).astype(int), g - 1) == r
        )
        assert count == inside.sum()
        np.testing.assert_allclose(mean, acts[inside].mean(0), rtol=1e-5, atol=1e-6)
        assert hist.tolist() == np.bincount(labels[inside], minlength=3).tolist()


def test_cells_are_kept_only_above_the_threshold():
    xy = np.array([[0.1, 0.1]] * 3 + [[0.9, 0.9]] * 4)
    acts = np.ones((7, 2))
    cells = bin_layout(xy, acts, np.zeros(7, dtype=int), 2, min_count=3, n_classes=1)
    assert cells.row.tolist() == [1] and cells.col.tolist() == [1]
    assert cells.count.tolist() == [4]
    assert cells.kept_fraction == pytest.approx(4 / 7)


def test_unknown_labels_are_averaged_but_not_counted_as_a_class():
    xy = np.full((4, 2), 0.5)
    acts = np.arange(8, dtype=float).reshape(4, 2)
    cells = bin_layout(xy, acts, np.array([0, -1, 1, 1]), 1, min_count=0, n_classes=2)
    assert cells.class_histogram.tolist() == [[1, 2]]
    np.testing.assert_allclose(cells.mean[0], acts.mean(0))
    assert cells.purity.tolist() == [pytest.approx(2 / 3)]


def test_rows_are_ordered_row_major():
    xy = np.array([[0.9, 0.9], [0.1, 0.9], [0.9, 0.1], [0.1, 0.1]])
    cells = bin_layout(xy, np.ones((4, 1)), np.zeros(4, dtype=int), 2, min_count=0, n_classes=1)
    assert list(zip(cells.row.tolist(), cells.col.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("bad", [[[1.2, 0.5]], [[-0.1, 0.5]], [[np.nan, 0.5]]])
def test_points_outside_the_unit_square_are_an_error(bad):
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        cell_coordinates(np.array(bad), 4)


def test_cell_attribution_means_and_top_classes():
    from activation_atlas.algorithms.binning import cell_attributions

    xy = np.array([[0.1, 0.1], [0.2, 0.2], [0.9, 0.9], [0.8, 0.9], [0.9, 0.1]])
    labels = np.zeros(5, dtype=int)
    cells = bin_layout(xy, np.ones((5, 1)), labels, 2, min_count=1, n_classes=1)  # keeps 2 cells
    attribution = np.array([[1.0, 0.0, 3.0], [3.0, 0.0, 1.0], [0.0, 5.0, 1.0], [0.0, 3.0, -1.0], [9.0, 9.0, 9.0]])
    mean, top, values = cell_attributions(xy, cells, attribution, None, 3, top=2)
    np.testing.assert_allclose(mean, [[2.0, 0.0, 2.0], [0.0, 4.0, 0.0]])
    assert top.tolist() == [[0, 2], [1, 0]] and values[:, 0].tolist() == [2.0, 4.0]


def test_top_k_attribution_counts_unlisted_classes_as_zero():
    from activation_atlas.algorithms.binning import cell_attributions

    xy = np.full((2, 2), 0.5)
    cells = bin_layout(xy, np.ones((2, 1)), np.zeros(2, dtype=int), 1, min_count=0, n_classes=1)
    mean, top, _ = cell_attributions(xy, cells, np.array([[4.0], [2.0]]), np.array([[3], [1]]), 4, top=2)
    np.testing.assert_allclose(mean, [[0.0, 1.0, 0.0, 2.0]])
    assert top.tolist() == [[3, 1]]


def test_cell_samples_are_distinct_images_of_the_cell_and_seeded():
    from activation_atlas.algorithms.binning import cell_samples

    xy = np.array([[0.1, 0.1]] * 6 + [[0.9, 0.9]] * 3 + [[0.1, 0.9]])
    image_index = np.array([5, 5, 7, 8, 9, 11, 20, 20, 21, 30])
    cells = bin_layout(xy, np.zeros((10, 2)), np.zeros(10, dtype=int), 2, 0, 1)
    samples = cell_samples(xy, cells, image_index, 3, np.random.default_rng(0))
    by_cell = {(r, c): s for r, c, s in zip(cells.row, cells.col, samples)}
    assert set(by_cell[(0, 0)]) <= {5, 7, 8, 9, 11} and len(set(by_cell[(0, 0)])) == 3
    assert list(by_cell[(1, 1)]) == [20, 21, -1]
    assert list(by_cell[(1, 0)]) == [30, -1, -1]
    again = cell_samples(xy, cells, image_index, 3, np.random.default_rng(0))
    assert np.array_equal(samples, again)
