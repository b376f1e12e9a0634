"""What each atom of a learned dictionary does on a layer's activations, from one pass over them in
blocks: how often it fires and how strongly, the activations it fires on most, the classes of those it
fires on, its attribution to the classes; and the dictionary's quality (explained variance, L0, dead
and dense atoms)."""

from __future__ import annotations

import numpy as np

from activation_atlas.formats.dictionary import AtomStatistics, DictionaryQuality

# Rows encoded at a time: the (rows, atoms) codes of a block stay near 64 MiB at 2,048 atoms.
STATS_BLOCK_ROWS = 1 << 13


class _Variance:
    """Sums from which the explained variance of a reconstruction is computed, block by block."""

    def __init__(self, channels: int):
        self.rows, self.sse, self.sum_sq = 0, 0.0, 0.0
        self.sum = np.zeros(channels)

    def add(self, x: np.ndarray, reconstruction: np.ndarray) -> None:
        x64 = x.astype(np.float64)
        self.rows += len(x)
        self.sse += float(np.square(x64 - reconstruction).sum())
        self.sum_sq += float(np.square(x64).sum())
        self.sum += x64.sum(axis=0)

    def explained(self) -> float:
        total = self.sum_sq - float(self.sum @ self.sum) / max(self.rows, 1)
        return round(1.0 - self.sse / total, 6) if total > 0 else 0.0


class TopRows:
    """Per unit, the n rows with the highest values seen so far, highest first (among equal values,
    the earlier row)."""

    def __init__(self, units: int, n: int):
        self.values = np.zeros((0, units), dtype=np.float32)
        self.rows = np.zeros((0, units), dtype=np.int64)
        self.n = n

    def add(self, values: np.ndarray, first_row: int) -> None:
        rows = np.broadcast_to(np.arange(first_row, first_row + len(values))[:, None], values.shape)
        values = np.concatenate([self.values, values.astype(np.float32)])
        rows = np.concatenate([self.rows, rows])
        if len(values) > self.n:
            kept = np.argpartition(-values, self.n - 1, axis=0)[: self.n]
            values, rows = np.take_along_axis(values, kept, 0), np.take_along_axis(rows, kept, 0)
        order = np.lexsort((rows, -values), axis=0)
        self.values, self.rows = np.take_along_axis(values, order, 0), np.take_along_axis(rows, order, 0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(units, n) rows and values; rows −1 (value 0) where fewer than n rows had a positive value."""
        values, rows = self.values.T.copy(), self.rows.T.copy()
        padded = values <= 0
        rows[padded], values[padded] = -1, 0.0
        pad = self.n - rows.shape[1]
        return np.pad(rows, ((0, 0), (0, pad)), constant_values=-1), np.pad(values, ((0, 0), (0, pad)))


def top_rows_along(
    activations, directions: np.ndarray | None, n: int, block_rows: int = STATS_BLOCK_ROWS
) -> np.ndarray:
    """(M, n) rows of `activations` (an array or HDF5 dataset) with the highest projections on each of the
    M unit `directions` (M, C), or (directions None) the highest values of each channel, read in blocks;
    −1 where fewer than n are positive."""
    top = TopRows(activations.shape[1] if directions is None else len(directions), n)
    for start in range(0, len(activations), block_rows):
        block = np.asarray(activations[start : start + block_rows], dtype=np.float32)
        top.add(block if directions is None else block @ directions.T, start)
    return top.result()[0]


def channel_statistics(activations, labels, n_labels: int, n: int, block_rows: int = STATS_BLOCK_ROWS):
    """Per channel of `activations`: the rows where it is positive ("fires"), its mean there, the labels
    of those rows (C, n_labels) and its n top rows."""
    channels = activations.shape[1]
    fires, sums = np.zeros(channels, dtype=np.int64), np.zeros(channels)
    histogram, top = np.zeros((channels, n_labels), dtype=np.int64), TopRows(channels, n)
    for start in range(0, len(labels), block_rows):
        x = np.asarray(activations[start : start + block_rows], dtype=np.float32)
        label, positive = labels[start : start + block_rows], x > 0
        fires += positive.sum(axis=0)
        sums += np.where(positive, x, 0).sum(axis=0, dtype=np.float64)
        for c in range(n_labels):
            histogram[:, c] += positive[label == c].sum(axis=0)
        top.add(x, start)
    return fires, (sums / np.maximum(fires, 1)).astype(np.float32), histogram, top.result()[0]


def _add_attribution(sums: np.ndarray, atoms, codes, attribution: np.ndarray, attribution_class) -> None:
    """Adds each row's codes × its attribution to the (A, K) sums; attribution_class (B, K') names the
    classes of a row's K' values (None: all K classes)."""
    n_atoms, n_classes = sums.shape
    classes = attribution_class if attribution_class is not None else np.arange(n_classes)[None, :]
    for rank in range(atoms.shape[1]):
        flat = atoms[:, rank, None] * n_classes + classes
        weights = codes[:, rank, None] * attribution
        sums += np.bincount(np.broadcast_to(flat, weights.shape).ravel(), weights.ravel(), n_atoms * n_classes).reshape(
            sums.shape
        )


def atom_statistics(activations, labels, n_labels: int, held_out, encoder, top_n: int, attribution=None,
                    attribution_class=None, n_logits: int = 0, dense_frequency: float = 0.1, log=print,
                    block_rows: int = STATS_BLOCK_ROWS) -> tuple[AtomStatistics, DictionaryQuality]:  # fmt: skip
    """One pass over `activations` (an array or HDF5 dataset; attribution likewise, with its classes
    attribution_class or None) encoded by `encoder` (algorithms.dictionary.SaeEncoder)."""
    n_atoms = encoder.sae.nb_concepts
    fires, code_sums = np.zeros(n_atoms, dtype=np.int64), np.zeros(n_atoms)
    histogram = np.zeros(n_atoms * n_labels, dtype=np.int64)
    attribution_sums = np.zeros((n_atoms, n_logits)) if attribution is not None else None
    variance = {"held_out": _Variance(activations.shape[1]), "train": _Variance(activations.shape[1])}
    held_l0, top = 0, TopRows(n_atoms, top_n)
    for start in range(0, len(labels), block_rows):
        stop = min(start + block_rows, len(labels))
        x = np.asarray(activations[start:stop], dtype=np.float32)
        codes, reconstruction = encoder.encode(x)
        top.add(codes.cpu().numpy(), start)
        values, atoms = (t.cpu().numpy() for t in codes.topk(encoder.sae.top_k, dim=1))
        firing = values > 0
        fires += np.bincount(atoms[firing], minlength=n_atoms)
        code_sums += np.bincount(atoms[firing], values[firing].astype(np.float64), n_atoms)
        label = np.broadcast_to(labels[start:stop, None], atoms.shape)
        known = firing & (label >= 0)
        histogram += np.bincount(atoms[known] * n_labels + label[known], minlength=n_atoms * n_labels)
        held = np.asarray(held_out[start:stop])
        reconstruction = reconstruction.cpu().numpy().astype(np.float64)
        variance["held_out"].add(x[held], reconstruction[held])
        variance["train"].add(x[~held], reconstruction[~held])
        held_l0 += int(firing[held].sum())
        if attribution_sums is not None:
            classes = np.asarray(attribution_class[start:stop]) if attribution_class is not None else None
            _add_attribution(attribution_sums, atoms, values, np.asarray(attribution[start:stop]), classes)
        log(f"encoded {stop}/{len(labels)} activations")
    top_rows, top_values = top.result()
    frequency = fires / max(len(labels), 1)
    statistics = AtomStatistics(
        fires=fires,
        frequency=frequency,
        mean_activation=(code_sums / np.maximum(fires, 1)).astype(np.float32),
        top_rows=top_rows,
        top_values=top_values,
        class_histogram=histogram.reshape(n_atoms, n_labels),
        attribution=(attribution_sums / np.maximum(code_sums, 1e-12)[:, None]).astype(np.float32)
        if attribution_sums is not None
        else None,
    )
    quality = DictionaryQuality(
        explained_variance=variance["held_out"].explained(),
        explained_variance_train=variance["train"].explained(),
        mean_l0=round(held_l0 / max(variance["held_out"].rows, 1), 6),
        dead_atoms=int((fires == 0).sum()),
        dense_atoms=int((frequency > dense_frequency).sum()),
        dense_frequency=dense_frequency,
        held_out_activations=variance["held_out"].rows,
        training_activations=variance["train"].rows,
    )
    return statistics, quality


def top_purity(top_rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per unit, the share of its top-activating rows (−1 pads; unlabelled rows left out) whose label is
    their most common one: how much one class its strongest examples are (NaN where it has none)."""
    purity = np.full(len(top_rows), np.nan)
    for k, rows in enumerate(top_rows):
        known = labels[rows[rows >= 0]]
        known = known[known >= 0]
        if len(known):
            purity[k] = np.bincount(known).max() / len(known)
    return purity
