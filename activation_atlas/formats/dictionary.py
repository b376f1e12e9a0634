"""The dictionary file of one layer: a TopK sparse autoencoder learned on its activations, what each atom
does on them and the dictionary's quality (results/<run>/dictionary/<layer>/dictionary.h5)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from activation_atlas.h5io import create_h5, open_h5, write_dataset

ATTRIBUTION_UNIT = "logit (h · ∂logit/∂h), code-weighted mean"
# name: (unit, axes); attribution only when the activations carry attributions.
DATASETS = {
    "decoder": ("activation / (rms norm)", "atom, channel; unit rows"),
    "encoder_weight": ("1", "atom, channel"),
    "encoder_bias": ("code / (rms norm)", "atom"),
    "fires": ("activations", "atom"),
    "frequency": ("fraction of activations", "atom"),
    "mean_activation": ("activation", "atom; mean code where it fires"),
    "top_rows": ("row of the activations file (-1: none)", "atom, rank"),
    "top_values": ("activation", "atom, rank"),
    "class_histogram": ("activations", "atom, class"),
    "attribution": (ATTRIBUTION_UNIT, "atom, logit"),
    "loss_per_epoch": ("mean squared error + AuxK, scaled", "epoch"),
}
ATTRIBUTES = (
    "stage",
    "package_version",
    "layer",
    "seed",
    "classes",
    "config",
    "top_k",
    "input_scale",
    "quality",
)


@dataclass
class LearnedSae:
    """A trained TopK SAE as arrays (its decoder's rows unit atoms in scaled units), and its training."""

    decoder: np.ndarray  # (A, C)
    encoder_weight: np.ndarray  # (A, C)
    encoder_bias: np.ndarray  # (A,)
    top_k: int
    scale: float  # activations were divided by this
    loss_per_epoch: list[float]


@dataclass
class AtomStatistics:
    fires: np.ndarray  # (A,) activations on which the atom is non-zero
    frequency: np.ndarray  # (A,) fires / activations
    mean_activation: np.ndarray  # (A,) mean code where it fires, in the layer's units (0 where dead)
    top_rows: np.ndarray  # (A, n) rows of the activations file with its highest codes; −1 pads
    top_values: np.ndarray  # (A, n) those codes (0 where padded)
    class_histogram: np.ndarray  # (A, L) labels of the activations it fires on (unlabelled left out)
    attribution: np.ndarray | None  # (A, K) code-weighted mean attribution to each logit


@dataclass
class DictionaryQuality:
    explained_variance: float  # 1 − SSE / total variance, on the held-out activations
    explained_variance_train: float  # the same on the training activations
    mean_l0: float  # mean non-zero codes per held-out activation
    dead_atoms: int  # atoms that fire on no activation
    dense_atoms: int  # atoms that fire on more than dense_frequency of the activations
    dense_frequency: float
    held_out_activations: int
    training_activations: int


@dataclass
class Dictionary:
    """A dictionary file's contents."""

    sae: LearnedSae
    statistics: AtomStatistics
    quality: DictionaryQuality
    classes: list[str]  # the dataset's class names (class_histogram's columns)

    @property
    def atoms(self) -> int:
        return len(self.sae.decoder)


def write_dictionary(path: Path | str, dictionary: Dictionary, **provenance) -> None:
    sae, stats = dictionary.sae, dictionary.statistics
    quality = asdict(dictionary.quality)
    with create_h5(path, "dictionary", classes=dictionary.classes, quality=quality, **provenance) as f:
        f.attrs["top_k"] = sae.top_k
        f.attrs["input_scale"] = sae.scale
        columns = {
            "decoder": sae.decoder,
            "encoder_weight": sae.encoder_weight,
            "encoder_bias": sae.encoder_bias,
            "fires": stats.fires,
            "frequency": stats.frequency,
            "mean_activation": stats.mean_activation,
            "top_rows": stats.top_rows,
            "top_values": stats.top_values,
            "class_histogram": stats.class_histogram,
            "attribution": stats.attribution,
            "loss_per_epoch": np.asarray(sae.loss_per_epoch),
        }
        for name, data in columns.items():
            if data is not None:
                write_dataset(f, name, data, *DATASETS[name])


def read_dictionary(path: Path | str) -> Dictionary:
    with open_h5(path) as f:
        quality = json.loads(f.attrs["quality"])
        sae = LearnedSae(
            decoder=f["decoder"][:],
            encoder_weight=f["encoder_weight"][:],
            encoder_bias=f["encoder_bias"][:],
            top_k=int(f.attrs["top_k"]),
            scale=float(f.attrs["input_scale"]),
            loss_per_epoch=f["loss_per_epoch"][:].tolist(),
        )
        statistics = AtomStatistics(
            fires=f["fires"][:],
            frequency=f["frequency"][:],
            mean_activation=f["mean_activation"][:],
            top_rows=f["top_rows"][:],
            top_values=f["top_values"][:],
            class_histogram=f["class_histogram"][:],
            attribution=f["attribution"][:] if "attribution" in f else None,
        )
        return Dictionary(sae, statistics, DictionaryQuality(**quality), json.loads(f.attrs["classes"]))
