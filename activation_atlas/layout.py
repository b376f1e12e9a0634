"""2-D layout of activation vectors with UMAP, and the paper's normalisation to [0, 1]²."""
from __future__ import annotations

import numpy as np


def fit_umap(activations: np.ndarray, *, n_neighbors: int, min_dist: float, metric: str, seed: int,
             pca_dims: int | None = None, low_memory: bool = False, verbose: bool = False,
             n_components: int = 2) -> np.ndarray:
    """UMAP embedding (N, n_components) float32, seeded (which makes umap-learn single-threaded, but
    exact)."""
    import umap   # imported here: `import umap` costs seconds, and most of the package never needs it

    if len(activations) <= n_neighbors:
        raise ValueError(f"n_neighbors={n_neighbors} needs more than {n_neighbors} activations, "
                         f"got {len(activations)}")
    data = np.asarray(activations, dtype=np.float32)
    if pca_dims is not None and pca_dims < data.shape[1]:
        from sklearn.decomposition import PCA
        data = PCA(n_components=pca_dims, random_state=seed).fit_transform(data).astype(np.float32)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                        random_state=seed, n_jobs=1, low_memory=low_memory, verbose=verbose,
                        tqdm_kwds={"disable": True})
    return reducer.fit_transform(data).astype(np.float32)


def normalise_layout(xy: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0,
                     widen: float = 0.1) -> np.ndarray:
    """Per axis: clip to the [low, high] percentiles widened by `widen` of their span, scale to [0, 1]."""
    xy = np.asarray(xy, dtype=np.float64)
    lo = np.percentile(xy, low_pct, axis=0)
    hi = np.percentile(xy, high_pct, axis=0)
    span = hi - lo
    lo, hi = lo - widen * span, hi + widen * span
    span = np.where(hi > lo, hi - lo, 1.0)   # a degenerate axis maps to 0 rather than dividing by 0
    return np.clip((xy - lo) / span, 0.0, 1.0).astype(np.float32)
