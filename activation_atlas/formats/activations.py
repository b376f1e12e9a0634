"""The activation file of one layer: one row per sampled activation, written batch by batch by the
extraction (one file per shard), concatenated into results/<run>/activations/<layer>.h5."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np

from activation_atlas.h5io import H5Reader, create_h5, open_h5, write_dataset
from activation_atlas.runtime import RunError

# name: (dtype, unit, axes); attribution and attribution_class only with extract.attribution.
DATASETS = {
    "activations": ("float32", "activation", "row, channel"),
    "image_index": ("int64", "index", "row"),
    "position": ("int32", "cell", "row, (row, col) in the layer's spatial grid"),
    "label": ("int64", "class index (−1: unlabelled)", "row"),
    "logits": ("float32", "logit", "row, class"),
    "attribution": ("float32", "logit (h · ∂logit/∂h)", "row, class"),
    "attribution_class": ("int32", "class index", "row, rank"),
}
# With attribution_top_k, attribution holds each row's values for the classes in attribution_class.
TOP_K_ATTRIBUTION_AXES = "row, rank (class in attribution_class)"
# shard: [k, K] in the shard files only; upscaled_images and empty_class_folders only where not zero
# or empty; shared_positions only where true.
ATTRIBUTES = (
    "stage",
    "package_version",
    "layer",
    "seed",
    "model",
    "classes",
    "config",
    "spatial_size",
    "positions_per_image",
    "exclude_edge",
    "shared_positions",
    "attribution",
    "images",
    "unreadable_images",
    "upscaled_images",
    "empty_class_folders",
    "shard",
)
# Attributes of a shard file only, or recomputed when the shards are merged.
PER_SHARD_ATTRIBUTES = ("stage", "package_version", "images", "unreadable_images", "upscaled_images", "shard")


def chunk_rows_for(n_rows: int, columns: int) -> int:
    """Rows per HDF5 chunk: about 2 MiB of float32."""
    return max(1, min(n_rows, (1 << 21) // (4 * columns)))


def create_activation_file(path: Path | str, layer: str, provenance: dict):
    """A new (shard) activation file of `layer`, open for a LayerWriter; renamed into place when the
    block completes."""
    return create_h5(path, "activations", layer=layer, **provenance)


class LayerWriter:
    """Preallocated datasets of one layer's activation file, filled batch by batch."""

    def __init__(self, f, n_rows: int, channels: int, n_logits: int, n_attributed: int = 0, with_classes: bool = False):
        # n_rows is an upper bound: rows of unreadable images are trimmed by finish().
        self.f = f
        self.chunk_rows = chunk_rows_for(n_rows, channels)
        self.activations = self.rows_dataset("activations", (n_rows, channels))
        self.image_index = self.rows_dataset("image_index", (n_rows,))
        self.position = self.rows_dataset("position", (n_rows, 2))
        self.label = self.rows_dataset("label", (n_rows,))
        self.logits = self.rows_dataset("logits", (n_rows, n_logits))
        self.row_datasets = [self.activations, self.image_index, self.position, self.label, self.logits]
        self.attribution = self.attribution_class = None
        if n_attributed:
            self.attribution = self.rows_dataset(
                "attribution", (n_rows, n_attributed), TOP_K_ATTRIBUTION_AXES if with_classes else None
            )
            self.row_datasets.append(self.attribution)
        if n_attributed and with_classes:
            self.attribution_class = self.rows_dataset("attribution_class", (n_rows, n_attributed))
            self.row_datasets.append(self.attribution_class)
        self.filled = 0

    def rows_dataset(self, name, shape, axes=None):
        dtype, unit, declared_axes = DATASETS[name]
        return write_dataset(
            self.f,
            name,
            None,
            unit,
            axes or declared_axes,
            shape=shape,
            dtype=dtype,
            maxshape=(None, *shape[1:]),
            chunks=(self.chunk_rows, *shape[1:]),
        )

    def describe_sampling(
        self,
        spatial_size: list[int],
        positions_per_image: int,
        exclude_edge: int,
        shared_positions: bool,
        attribution: str,
    ) -> None:
        attrs = self.f.attrs
        attrs["spatial_size"] = spatial_size
        attrs["positions_per_image"] = positions_per_image
        attrs["exclude_edge"] = exclude_edge
        if shared_positions:  # only then: files of independently drawn positions stay as they were
            attrs["shared_positions"] = True
        attrs["attribution"] = attribution

    def finish(self, images: int, unreadable_images: int, upscaled_images: int = 0) -> None:
        """Trim the rows to those written and record how many images they came from (and how many of
        those were scaled up to the input size)."""
        for dataset in self.row_datasets:
            dataset.resize(self.filled, axis=0)
        self.f.attrs["images"] = images
        self.f.attrs["unreadable_images"] = unreadable_images
        if upscaled_images:  # only then: a clean dataset's files stay as they were
            self.f.attrs["upscaled_images"] = upscaled_images

    def write(self, acts, image_index, position, label, logits, attribution=None, attribution_class=None):
        rows = slice(self.filled, self.filled + len(acts))
        self.activations[rows] = acts
        self.image_index[rows] = image_index
        self.position[rows] = position
        self.label[rows] = label
        self.logits[rows] = logits
        if self.attribution is not None:
            self.attribution[rows] = attribution
        if self.attribution_class is not None:
            self.attribution_class[rows] = attribution_class
        self.filled = rows.stop


def merge_shards(shard_paths: list[Path], out_path: Path, block_rows: int = 1 << 16) -> int:
    """Concatenate one layer's shard files, in order, into its activation file; returns the rows.

    The output is written in fixed blocks of rows whatever the shard boundaries, so it is the same
    file, byte for byte, for any number of shards.
    """
    with ExitStack() as stack:
        shards = [stack.enter_context(open_h5(path)) for path in shard_paths]
        provenance = {k: v for k, v in shards[0].attrs.items() if k not in PER_SHARD_ATTRIBUTES}
        total = sum(len(f["image_index"]) for f in shards)
        with create_h5(out_path, "activations", **provenance) as out:
            for name in DATASETS:
                if name not in shards[0]:
                    continue
                first = shards[0][name]
                tail = first.shape[1:]
                chunks = (chunk_rows_for(total, int(np.prod(tail))), *tail) if total else None
                dataset = write_dataset(
                    out,
                    name,
                    None,
                    first.attrs["unit"],
                    first.attrs["axes"],
                    shape=(total, *tail),
                    dtype=first.dtype,
                    chunks=chunks,
                )
                start = 0
                for block in row_blocks([f[name] for f in shards], block_rows):
                    dataset[start : start + len(block)] = block
                    start += len(block)
            out.attrs["images"] = sum(int(f.attrs["images"]) for f in shards)
            out.attrs["unreadable_images"] = sum(int(f.attrs["unreadable_images"]) for f in shards)
            upscaled = sum(int(f.attrs.get("upscaled_images", 0)) for f in shards)
            if upscaled:
                out.attrs["upscaled_images"] = upscaled
    return total


def row_blocks(datasets, block_rows: int):
    """The rows of the datasets, in order, in blocks of block_rows (the last one shorter)."""
    pending, held = [], 0
    for data in datasets:
        for offset in range(0, len(data), block_rows):
            piece = data[offset : offset + block_rows]
            pending.append(piece)
            held += len(piece)
            if held >= block_rows:  # pieces hold at most block_rows: one block to give
                rows = np.concatenate(pending)
                yield rows[:block_rows]
                pending, held = [rows[block_rows:]], len(rows) - block_rows
    if held:
        yield np.concatenate(pending)


class ActivationFile(H5Reader):
    """A layer's activation file open for reading. `activations`, `attribution` and
    `attribution_class` are HDF5 datasets, read when sliced (in blocks, for a million rows)."""

    def __len__(self) -> int:
        return len(self.file["image_index"])

    @property
    def images(self) -> int:
        """The images the activations were read from (unreadable ones left out)."""
        return int(self.file.attrs["images"])

    @property
    def classes(self) -> list[str]:
        """The dataset's class names, indexed by `label`."""
        return json.loads(self.file.attrs["classes"])

    @property
    def activations(self) -> h5py.Dataset:
        return self.file["activations"]

    @property
    def labels(self) -> np.ndarray:
        return self.file["label"][:]

    @property
    def image_index(self) -> np.ndarray:
        return self.file["image_index"][:]

    def image_predictions(self, block_rows: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
        """The label and the model's top-1 logit of each extracted image, from its first row (every row
        of an image has the same); logits are read in blocks of rows."""
        logits = self.file["logits"]
        top1 = np.concatenate(
            [logits[start : start + block_rows].argmax(axis=1) for start in range(0, len(logits), block_rows)]
            or [np.zeros(0, np.int64)]
        )
        _, first = np.unique(self.image_index, return_index=True)
        first = np.sort(first)
        return self.labels[first], top1[first]

    @property
    def attribution(self) -> h5py.Dataset | None:
        return self.file.get("attribution")

    @property
    def attribution_class(self) -> h5py.Dataset | None:
        return self.file.get("attribution_class")

    def read_attributions(self) -> tuple[np.ndarray, np.ndarray | None]:
        """attribution, and attribution_class (None when every class is attributed), read whole."""
        if self.attribution is None:
            raise RunError(f"{self.path} holds no attributions: class atlases need extract.attribution: true")
        classes = self.attribution_class
        return self.attribution[:], classes[:] if classes is not None else None

    def read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Activations, labels and image indices of the given rows."""
        return self.activations[:][rows], self.labels[rows], self.image_index[rows]

    def read_positions(self, rows: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The (row, col) positions of the given rows in the layer's grid, and that grid's (H, W)."""
        return self.file["position"][:][rows], tuple(int(v) for v in self.file.attrs["spatial_size"])
