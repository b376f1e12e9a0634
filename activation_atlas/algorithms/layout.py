"""2-D layout of activation vectors with UMAP, the paper's normalisation to [0, 1]², and the scatter
plot of a layout."""

from __future__ import annotations

from contextlib import redirect_stdout

import numpy as np

from activation_atlas.runtime import RunError, atomic_output

THREADED_KNN_BACKEND = "umap-learn-threaded-knn"
LAYOUT_BACKENDS = ("umap-learn", THREADED_KNN_BACKEND, "cuml")
# umap-learn's own threshold: below it, it computes every distance (exact, cheap) rather than search.
EXACT_NEIGHBOURS_BELOW = 4096
PCA_BLOCK_ROWS = 1 << 16


def pca_in_blocks(activations, n_components: int, block_rows: int = PCA_BLOCK_ROWS) -> np.ndarray:
    """(N, n_components) float32 projection of the activations (an array or an HDF5 dataset) on their
    principal components, fitted and applied block_rows rows at a time (scikit-learn's
    IncrementalPCA): a million 512-d activations are never all in memory."""
    from sklearn.decomposition import IncrementalPCA

    n = len(activations)
    # Every block must hold at least n_components rows: a short last block joins the one before.
    starts = list(range(0, n, block_rows))
    if len(starts) > 1 and n - starts[-1] < n_components:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [n]))
    pca = IncrementalPCA(n_components=n_components)
    for start, stop in bounds:
        pca.partial_fit(np.asarray(activations[start:stop], dtype=np.float32))
    return np.concatenate(
        [pca.transform(np.asarray(activations[start:stop], dtype=np.float32)) for start, stop in bounds]
    ).astype(np.float32)


def cache_umap_kernels() -> int:
    """Makes numba keep umap-learn's compiled kernels on disk (beside its sources, or numba's user-wide
    cache where those are read-only), as it does for pynndescent's: most of them are compiled without,
    which costs every layout job tens of seconds of JIT before its first point moves. numba keys the
    cache on the code and the CPU, so a kernel is reused only where it would compile the same.
    Returns how many kernels it covers."""
    import umap.distances
    import umap.layouts
    import umap.sparse
    import umap.spectral
    import umap.umap_
    import umap.utils
    from numba.core.registry import CPUDispatcher

    kernels = [
        kernel
        for module in (umap.umap_, umap.layouts, umap.spectral, umap.utils, umap.distances, umap.sparse)
        for kernel in vars(module).values()
        if isinstance(kernel, CPUDispatcher)
    ]
    for kernel in kernels:
        kernel.enable_caching()
    return len(kernels)


def threaded_knn(
    data: np.ndarray, n_neighbors: int, metric: str, seed: int, low_memory: bool, threads: int, verbose: bool
) -> tuple:
    """umap-learn's own nearest-neighbour search (pynndescent), on `threads` threads. pynndescent splits
    its work into as many fixed parts as threads and merges them in order, so the graph is the same
    from run to run for a thread count, though not across thread counts."""
    import numba
    from umap.umap_ import nearest_neighbors

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise RunError(
            f"threads = {threads}: the layout's nearest-neighbour search is split into that many "
            f"parts, and numba allows {numba.config.NUMBA_NUM_THREADS} here; set NUMBA_NUM_THREADS="
            f"{threads} or lower threads (the layout's bytes depend on it)"
        )
    return nearest_neighbors(
        data,
        n_neighbors,
        metric,
        {},
        False,
        np.random.RandomState(seed),
        low_memory=low_memory,
        use_pynndescent=True,
        n_jobs=threads,
        verbose=verbose,
    )


def fit_umap(
    activations: np.ndarray,
    *,
    n_neighbors: int,
    min_dist: float,
    metric: str,
    seed: int,
    pca_dims: int | None = None,
    low_memory: bool = False,
    verbose: bool = False,
    n_components: int = 2,
    backend: str = "umap-learn",
    knn_threads: int = 1,
) -> np.ndarray:
    """UMAP embedding (N, n_components) float32, seeded. umap-learn is exact for a seed (which makes it
    single-threaded); "umap-learn-threaded-knn" is umap-learn given its nearest neighbours searched on
    knn_threads threads (exact for a seed and a thread count; below EXACT_NEIGHBOURS_BELOW points both
    compute every distance); "cuml" runs RAPIDS cuML's UMAP on the GPU, much faster at a million
    points, and seeded but not bit-reproducible. `activations` may be an HDF5 dataset: with pca_dims it
    is reduced block by block and never read whole."""
    if backend not in LAYOUT_BACKENDS:
        raise RunError(f"unknown layout backend {backend!r}; valid: {', '.join(LAYOUT_BACKENDS)}")
    if len(activations) <= n_neighbors:
        raise RunError(f"n_neighbors={n_neighbors} needs more than {n_neighbors} activations, got {len(activations)}")
    if pca_dims is not None and pca_dims < activations.shape[1]:
        data = pca_in_blocks(activations, pca_dims)
    else:
        data = np.asarray(activations[:], dtype=np.float32)
    if backend == "cuml":
        try:
            from cuml.manifold import UMAP as CumlUMAP
        except ImportError as error:
            raise RunError(
                "layout.backend: cuml needs RAPIDS cuML and a CUDA GPU (see "
                "https://docs.rapids.ai/install); it is not installed here. Use layout.backend: "
                "umap-learn, or install cuML into the layout environment"
            ) from error
        reducer = CumlUMAP(
            n_components=n_components,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            metric=metric,
            random_state=seed,
            verbose=verbose,
        )
        return np.asarray(reducer.fit_transform(data), dtype=np.float32)
    import umap  # imported here: `import umap` costs seconds, and most of the package never needs it

    cache_umap_kernels()
    knn = (None, None, None)
    if backend == THREADED_KNN_BACKEND and len(data) >= EXACT_NEIGHBOURS_BELOW:
        knn = threaded_knn(data, n_neighbors, metric, seed, low_memory, knn_threads, verbose)
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        n_jobs=1,
        low_memory=low_memory,
        verbose=verbose,
        tqdm_kwds={"disable": True},
        precomputed_knn=knn,
    )
    return reducer.fit_transform(data).astype(np.float32)


def normalise_layout(xy: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0, widen: float = 0.1) -> np.ndarray:
    """Per axis: clip to the [low, high] percentiles widened by `widen` of their span, scale to [0, 1]."""
    xy = np.asarray(xy, dtype=np.float64)
    lo = np.percentile(xy, low_pct, axis=0)
    hi = np.percentile(xy, high_pct, axis=0)
    span = hi - lo
    lo, hi = lo - widen * span, hi + widen * span
    span = np.where(hi > lo, hi - lo, 1.0)  # a degenerate axis maps to 0 rather than dividing by 0
    return np.clip((xy - lo) / span, 0.0, 1.0).astype(np.float32)


def lay_out(activations, umap: dict, seed: int, log, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """UMAP of the activations with the settings `umap` (fit_umap's keywords), raw and normalised to
    [0, 1] per axis; umap-learn's progress goes to the log."""
    log(f"{n_components}-D UMAP of {activations.shape[0]} × {activations.shape[1]} activations: {umap}")
    with redirect_stdout(log):  # umap-learn reports its progress with print()
        raw = fit_umap(activations, seed=seed, verbose=True, n_components=n_components, **umap)
    return raw, normalise_layout(raw)


def plot_layout(xy: np.ndarray, labels: np.ndarray, classes: list[str], out, title: str, size_px: int) -> None:
    """A PNG scatter plot of a normalised layout, coloured by class, without time or software metadata."""
    import matplotlib  # imported here: only the layout stages draw

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k, name in enumerate(classes):
        mine = labels == k
        ax.scatter(xy[mine, 0], xy[mine, 1], s=2, color=cmap(k % cmap.N), label=name, linewidths=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    if len(classes) <= 20:
        ax.legend(fontsize=6, markerscale=4, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    with atomic_output(out) as partial:
        fig.savefig(partial, format="png", metadata={"Software": None})
    plt.close(fig)
