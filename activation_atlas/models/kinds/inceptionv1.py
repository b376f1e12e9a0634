"""inceptionv1: the paper's network, TensorFlow's "inception5h" GoogLeNet (models/inceptionv1.py), with
its weights from model.url or model.checkpoint and the 1,008 class names it was published with."""

from __future__ import annotations

from pathlib import Path

from activation_atlas.models.kinds import ModelKind

LABEL_FILE = Path(__file__).resolve().parents[1] / "inceptionv1_labels.txt"


def build(model_cfg: dict, num_classes: int | None):
    from activation_atlas.models.inceptionv1 import InceptionV1

    return InceptionV1()


def known_layers(model_cfg: dict) -> tuple[str, ...]:
    from activation_atlas.models.inceptionv1 import InceptionV1

    return InceptionV1.layer_names()


def shipped_labels(model_cfg: dict) -> list[str]:
    """The shipped names, then "unused K" for the logits past them."""
    from activation_atlas.models.inceptionv1 import NUM_CLASSES

    labels = LABEL_FILE.read_text().splitlines()
    return labels + [f"unused {i}" for i in range(len(labels), NUM_CLASSES)]


KIND = ModelKind(
    name="inceptionv1",
    build=build,
    keys=("url", "sha256", "checkpoint"),
    known_layers=known_layers,
    shipped_labels=shipped_labels,
    labels_checked_before_jobs=True,
)
