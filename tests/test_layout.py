import numpy as np
import pytest

from activation_atlas.algorithms.layout import fit_umap, normalise_layout, threaded_knn
from activation_atlas.runtime import RunError
from activation_atlas.workflow.settings import layout_threads, umap_settings


def test_normalisation_clips_outliers_and_widens_the_percentile_range(rng):
    xy = np.column_stack([np.linspace(0, 100, 1001), np.linspace(-5, 5, 1001)])
    xy[0] = [-1000, -1000]
    out = normalise_layout(xy)
    assert out.min() >= 0 and out.max() <= 1
    assert out[0].tolist() == [0.0, 0.0]  # the outlier is clipped to the border
    lo, hi = np.percentile(xy[:, 0], [1, 99])
    span = hi - lo
    # The 1st percentile lands 10 % of the span inside the border: 0.1 / 1.2 of the axis.
    expected = (lo - (lo - 0.1 * span)) / (1.2 * span)
    assert normalise_layout(np.array([[lo, 0]] + xy.tolist()))[0, 0] == pytest.approx(expected, abs=1e-6)


def test_normalisation_of_a_degenerate_axis_does_not_divide_by_zero():
    xy = np.column_stack([np.linspace(0, 1, 50), np.full(50, 3.0)])
    out = normalise_layout(xy)
    assert np.isfinite(out).all() and (out[:, 1] == 0).all()


def test_umap_is_deterministic_for_a_seed_and_separates_clusters(rng):
    centres = rng.normal(size=(3, 16)) * 10
    data = np.concatenate([c + rng.normal(size=(60, 16)) for c in centres]).astype(np.float32)
    a = fit_umap(data, n_neighbors=10, min_dist=0.1, metric="euclidean", seed=4)
    b = fit_umap(data, n_neighbors=10, min_dist=0.1, metric="euclidean", seed=4)
    assert a.shape == (180, 2) and a.dtype == np.float32
    assert np.array_equal(a, b)
    means = np.array([a[i * 60 : (i + 1) * 60].mean(0) for i in range(3)])
    spread = max(a[i * 60 : (i + 1) * 60].std(0).max() for i in range(3))
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 3 * spread


def test_too_few_points_for_the_neighbourhood_is_an_error(rng):
    with pytest.raises(ValueError, match="n_neighbors=20 needs more than 20 activations, got 10"):
        fit_umap(rng.normal(size=(10, 4)), n_neighbors=20, min_dist=0.1, metric="euclidean", seed=0)


def test_the_cuml_backend_is_used_only_when_installed_and_says_so_otherwise(rng):
    import importlib.util

    data = rng.normal(size=(50, 4)).astype(np.float32)
    if importlib.util.find_spec("cuml") is None:
        with pytest.raises(RunError, match="layout.backend: cuml needs RAPIDS cuML"):
            fit_umap(data, n_neighbors=5, min_dist=0.1, metric="euclidean", seed=0, backend="cuml")
    else:
        layout = fit_umap(data, n_neighbors=5, min_dist=0.1, metric="euclidean", seed=0, backend="cuml")
        assert layout.shape == (50, 2)
    with pytest.raises(ValueError, match="valid: umap-learn, umap-learn-threaded-knn, cuml"):
        fit_umap(data, n_neighbors=5, min_dist=0.1, metric="euclidean", seed=0, backend="tsne")


def test_the_threaded_knn_graph_is_the_same_run_to_run_and_finds_the_true_neighbours(rng):
    from sklearn.neighbors import NearestNeighbors

    # 6,000 points: above 4,096, where umap-learn itself would search approximately too.
    centres = rng.normal(size=(12, 32)) * 3
    data = (centres[rng.integers(0, 12, 6000)] + rng.normal(size=(6000, 32))).astype(np.float32)
    graphs = [threaded_knn(data, 15, "cosine", 3, False, 2, False) for _ in range(2)]
    assert graphs[0][0].tobytes() == graphs[1][0].tobytes() and graphs[0][1].tobytes() == graphs[1][1].tobytes()
    exact = NearestNeighbors(n_neighbors=15, metric="cosine", algorithm="brute").fit(data).kneighbors(data)[1]
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(graphs[0][0], exact)])
    assert recall > 0.9, recall


# Slow (three UMAP fits of 6,000 points): the graph test above is the fast check of the same backend.
@pytest.mark.slow
def test_the_threaded_knn_layout_is_the_same_bytes_run_to_run_and_as_trustworthy_as_one_thread(rng):
    from sklearn.manifold import trustworthiness

    # 6,000 points: above 4,096, where umap-learn itself would search approximately too.
    centres = rng.normal(size=(12, 32)) * 3
    data = (centres[rng.integers(0, 12, 6000)] + rng.normal(size=(6000, 32))).astype(np.float32)
    umap = dict(n_neighbors=15, min_dist=0.1, metric="cosine", seed=3)
    threaded = [fit_umap(data, backend="umap-learn-threaded-knn", knn_threads=2, **umap) for _ in range(2)]
    assert threaded[0].tobytes() == threaded[1].tobytes()
    one_thread = fit_umap(data, **umap)
    sample = rng.choice(6000, 2000, replace=False)
    trust = [
        trustworthiness(data[sample], xy[sample], n_neighbors=15, metric="cosine") for xy in (threaded[0], one_thread)
    ]
    assert trust[0] > 0.9 and trust[0] > trust[1] - 0.01, trust


def test_the_threaded_knn_search_is_split_as_the_config_says_and_refuses_more_parts_than_numba_has(rng):
    import numba

    threaded = {
        "threads": 3,
        "layout": {
            "backend": "umap-learn-threaded-knn",
            "scatter_size": 800,
            "per_layer": {"conv1": {"min_dist": 0.2}},
        },
    }
    assert layout_threads(umap_settings(threaded, "conv1")) == 3 == umap_settings(threaded, "conv1")["knn_threads"]
    one = {"threads": 3, "layout": {"backend": "umap-learn", "scatter_size": 800}}
    assert layout_threads(umap_settings(one, "conv1")) == 1 and "knn_threads" not in umap_settings(one, "conv1")
    too_many = numba.config.NUMBA_NUM_THREADS + 1
    with pytest.raises(
        RunError,
        match=f"threads = {too_many}: .* numba allows {too_many - 1} here; set "
        f"NUMBA_NUM_THREADS={too_many} or lower threads",
    ):
        threaded_knn(rng.normal(size=(50, 4)).astype(np.float32), 5, "euclidean", 0, False, too_many, False)


def test_below_umap_learns_exact_threshold_the_threaded_backend_is_umap_learn(rng):
    data = rng.normal(size=(300, 8)).astype(np.float32)
    umap = dict(n_neighbors=10, min_dist=0.1, metric="euclidean", seed=1)
    assert np.array_equal(
        fit_umap(data, backend="umap-learn-threaded-knn", knn_threads=2, **umap), fit_umap(data, **umap)
    )


def test_pca_in_blocks_matches_pca_and_handles_a_short_last_block(rng):
    from sklearn.decomposition import PCA

    from activation_atlas.algorithms.layout import pca_in_blocks

    data = (rng.normal(size=(5000, 12)) * np.array([12, 10, 8, 6, 5, 4, 3, 2, 1, 1, 1, 1])).astype(np.float32)
    blocked = pca_in_blocks(data, 8, block_rows=999)  # the last block, 5 rows, joins the one before
    exact = PCA(n_components=8).fit_transform(data)
    assert blocked.shape == (5000, 8) and blocked.dtype == np.float32
    for k in range(4):  # the well-separated components agree up to sign
        assert abs(np.corrcoef(blocked[:, k], exact[:, k])[0, 1]) > 0.999
