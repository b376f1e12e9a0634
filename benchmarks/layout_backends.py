"""Layouts of N activations side by side: wall time, peak memory (RSS), trustworthiness and whether
a seeded run gives the same bytes again.

Methods, each run in its own process on the same PCA-reduced activations (synthetic N × 512 float32,
clustered and non-negative like a ReLU layer's: scale_benchmark.py):
  umap-learn               seeded umap-learn, the workflow's default backend (one thread)
  umap-learn-threaded-knn  the same with its nearest neighbours searched on --threads threads
  opentsne                 openTSNE's FFT-accelerated t-SNE on --threads threads, seeded
                           (pip install openTSNE; not a dependency of the workflow)
Trustworthiness (scikit-learn, 15 neighbours, cosine) is measured against the full 512-d activations
on a seeded sample of 5,000 points.

    python -m benchmarks.layout_backends --sizes 100000 --repeats 3
    python -m benchmarks.layout_backends --sizes 1000000 --pca-dims 50

Figures are printed and kept in docs/measurements/layout_backends.json (a run adds its sizes to those
kept); each run's own progress
(umap-learn's and openTSNE's timestamps) to logs/benchmarks/layout_backends/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from benchmarks import MEASUREMENTS, keep
from benchmarks.scale_benchmark import peak_rss_mb, synthetic_activations

REPO = Path(__file__).resolve().parents[1]

METHODS = ("umap-learn", "umap-learn-threaded-knn", "opentsne")
SEED = 0
TRUST_SAMPLE = 5000
TRUST_NEIGHBORS = 15


def child_layout(method: str, data_path: Path, out_path: Path, threads: int) -> dict:
    """Lays the data out with one method; its progress (printed) goes to stderr, the run's log."""
    with redirect_stdout(sys.stderr):
        return timed_layout(method, data_path, out_path, threads)


def timed_layout(method: str, data_path: Path, out_path: Path, threads: int) -> dict:
    data = np.load(data_path)
    start = time.perf_counter()
    if method == "opentsne":
        from openTSNE import TSNE

        xy = TSNE(
            n_components=2, metric="cosine", neighbors="pynndescent", n_jobs=threads, random_state=SEED, verbose=True
        ).fit(data)
    else:
        from activation_atlas.algorithms.layout import fit_umap

        xy = fit_umap(
            data,
            n_neighbors=15,
            min_dist=0.05,
            metric="cosine",
            seed=SEED,
            verbose=True,
            backend=method,
            knn_threads=threads,
        )
    seconds = time.perf_counter() - start
    np.save(out_path, np.asarray(xy, dtype=np.float32))
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run_child(method: str, data_path: Path, out_path: Path, threads: int, log_path: Path) -> dict:
    with open(log_path, "w") as log:
        result = subprocess.run(
            [sys.executable, "-m", __spec__.name, "--child", method, str(data_path), str(out_path), str(threads)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed: see {log_path}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def reduced_activations(n: int, pca_dims: int | None, tmp: Path) -> tuple[Path, Path, float]:
    """Synthetic activations (kept for trustworthiness), reduced by PCA as the layout stage reduces
    them and saved for the children, and the seconds PCA took."""
    import h5py

    from activation_atlas.algorithms.layout import pca_in_blocks

    acts_path = tmp / f"acts{n}.h5"
    synthetic_activations(acts_path, n)
    with h5py.File(acts_path, "r") as f:
        start = time.perf_counter()
        data = pca_in_blocks(f["activations"], pca_dims) if pca_dims else f["activations"][:]
        pca_seconds = time.perf_counter() - start if pca_dims else 0.0
    data_path = tmp / f"data{n}.npy"
    np.save(data_path, data)
    return acts_path, data_path, pca_seconds


def measure(method: str, n: int, acts_path: Path, data_path: Path, args, tmp: Path) -> dict:
    import h5py

    from activation_atlas.algorithms.montage import trustworthiness_on_sample

    runs, digests = [], []
    for repeat in range(args.repeats):
        out_path = tmp / f"{method}.npy"
        log_path = args.logs / f"{method}-{n}-pca{args.pca_dims}-{repeat}.log"
        runs.append(run_child(method, data_path, out_path, args.threads, log_path))
        xy = np.load(out_path)
        digests.append(hashlib.sha256(xy.tobytes()).hexdigest())
    with h5py.File(acts_path, "r") as f:
        trust = trustworthiness_on_sample(f["activations"], xy, TRUST_SAMPLE, TRUST_NEIGHBORS, "cosine", SEED)
    seconds = [run["seconds"] for run in runs]
    return {
        "method": method,
        "n": n,
        "pca_dims": args.pca_dims,
        "threads": args.threads,
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "trustworthiness": trust,
        "same_bytes": len(set(digests)) == 1,
        "sha256": digests[0],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--pca-dims", type=int, default=50, help="0: lay out the 512-d activations")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (the median time is reported)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, data_path, out_path, threads = args.child
        print(json.dumps(child_layout(method, Path(data_path), Path(out_path), int(threads))))
        return
    args.logs = REPO / "logs" / "benchmarks" / "layout_backends"
    args.logs.mkdir(parents=True, exist_ok=True)
    kept = MEASUREMENTS / "layout_backends.json"
    earlier = json.loads(kept.read_text())["figures"] if kept.exists() else []
    report = [row for row in earlier if row["n"] not in args.sizes]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            acts_path, data_path, pca_seconds = reduced_activations(n, args.pca_dims or None, tmp)
            print(f"N={n}: PCA to {args.pca_dims or 'no'} dims {pca_seconds:.0f} s", flush=True)
            for method in args.methods:
                row = measure(method, n, acts_path, data_path, args, tmp)
                row["pca_seconds"] = pca_seconds
                report.append(row)
                print(
                    f"  {method}: {row['median_seconds']:.0f} s (runs: "
                    f"{', '.join(f'{s:.0f}' for s in row['seconds'])}), peak RSS {row['peak_rss_mb']:.0f} MB, "
                    f"trustworthiness {row['trustworthiness']:.4f}, same bytes: {row['same_bytes']}",
                    flush=True,
                )
                keep("layout_backends", report)


if __name__ == "__main__":
    main()
