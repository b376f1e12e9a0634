"""Compiles umap-learn's numba kernels once into their on-disk cache (activation_atlas.algorithms.layout
.cache_umap_kernels), so that the first layout job or test after an install does not spend tens of
seconds compiling them. make install runs it; the kernels are the same as a first fit would compile.

    python -m tools.warm_numba_cache
"""

import numpy as np

from activation_atlas.algorithms.layout import fit_umap


def main() -> None:
    data = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    for metric in ("cosine", "euclidean"):
        fit_umap(data, n_neighbors=10, min_dist=0.1, metric=metric, seed=0)


if __name__ == "__main__":
    main()
