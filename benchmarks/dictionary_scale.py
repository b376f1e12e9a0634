"""Wall time and peak memory (RSS) of learning a sparse dictionary (the dictionary stage's job: training,
then one pass encoding every activation for the atoms' statistics and the quality) on N × 512 synthetic
activations (benchmarks.scale_benchmark's: clustered and non-negative like a ReLU layer's), at two or more
N, each in its own process so that its peak RSS is its own: memory must not grow with N, as the job
reads the activations file in blocks.

    python -m benchmarks.dictionary_scale                              # N = 100k and 1M, 1 epoch
    python -m benchmarks.dictionary_scale --sizes 20000 100000 --epochs 1

Figures are printed and kept in docs/measurements/dictionary_scale.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks import keep
from benchmarks.scale_benchmark import CHANNELS, peak_rss_mb, run_child, synthetic_activations

# The dictionary section at the schema's defaults but for top_k (32 of 2,048 atoms, for 512 channels)
# and the epochs (set per run).
SECTION = {
    "expansion": 4,
    "atoms": None,
    "top_k": 32,
    "batch_size": 1024,
    "learning_rate": 0.001,
    "held_out": 0.1,
    "dense_frequency": 0.1,
    "top_examples": 16,
}


def child_learn(acts: Path, epochs: int, device: str) -> dict:
    from activation_atlas.formats.dictionary import read_dictionary
    from activation_atlas.runtime import ProgressLog
    from activation_atlas.stages.dictionary import DictionaryLearning, learn_dictionary

    out = acts.with_name("dictionary.h5")
    settings = DictionaryLearning(seed=0, device=device, layer="synthetic", dictionary=dict(SECTION, epochs=epochs))
    start = time.perf_counter()
    learn_dictionary(acts, out, settings, 2, ProgressLog(None))
    seconds = time.perf_counter() - start
    quality = read_dictionary(out).quality
    return {
        "seconds": seconds,
        "explained_variance": quality.explained_variance,
        "dead_atoms": quality.dead_atoms,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        result = child_learn(Path(args.child[0]), int(args.child[1]), args.child[2])
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            acts = Path(tmp) / f"acts{n}.h5"
            synthetic_activations(acts, n)
            row = {"n": n, "channels": CHANNELS, "atoms": SECTION["expansion"] * CHANNELS, "epochs": args.epochs}
            row |= run_learning(acts, args.epochs, args.device)
            rows.append(row)
            print(
                f"N={n} × {CHANNELS}: {row['seconds']:.0f} s ({row['seconds_per_million_activations_and_epoch']:.0f}"
                f" s per 1M activations and epoch, statistics pass included), peak RSS {row['peak_rss_mb']:.0f} MB; "
                f"explained variance {row['explained_variance']:.3f}, {row['dead_atoms']} dead atoms",
                flush=True,
            )
            acts.unlink()
    keep("dictionary_scale", {"section": SECTION, "device": args.device, "sizes": rows})


def run_learning(acts: Path, epochs: int, device: str) -> dict:
    result = run_child(acts, epochs, device, module="benchmarks.dictionary_scale")
    n = int(acts.stem.removeprefix("acts"))
    result["seconds_per_million_activations_and_epoch"] = result["seconds"] / (n / 1e6) / epochs
    return result


if __name__ == "__main__":
    main()
