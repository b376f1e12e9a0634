"""The model card, resources/models/<name>/model.json: what the later stages need to know of the
model (the names of its logits, its layers) and how well it classifies; and a run's copy of it,
results/<run>/model.json, with the model's accuracy on the images the run extracted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from activation_atlas.models.labels import logit_index
from activation_atlas.runtime import RunError, write_json

# Every card has these keys; held_out_accuracy is null for a model the workflow did not evaluate.
KEYS = ("model", "kind", "classes", "layers", "held_out_accuracy")
# A card of a model the workflow trained (demo_cnn) also has these.
TRAINING_KEYS = ("train_accuracy", "held_out_images", "train_images", "loss_per_epoch")
# Only where an atlas layer does not give (B, C, H, W) maps: {layer: how it is read as one}
# (models/grids.py: channels_last, vector, tokens(prefix=P), class_token); only where the logits read an
# atlas layer through a norm: {layer: the norm it is attributed at} (models/normalised.py).
GRID_KEYS = ("layer_grids", "attributed_at")
# A run's card also has these: top-1 accuracy on the extracted images whose dataset class names a
# logit (null when the dataset's classes do not name the model's logits), over how many images.
RUN_KEYS = ("extracted_accuracy", "extracted_images", "chance_accuracy")


def write_card(path: Path | str, card: dict) -> None:
    missing = [key for key in KEYS if key not in card]
    unknown = [key for key in card if key not in KEYS + TRAINING_KEYS + GRID_KEYS + RUN_KEYS]
    if missing or unknown:
        raise RunError(f"model card {path}: missing keys {missing}, unknown keys {unknown}")
    write_json(path, card)


def read_card(path: Path | str) -> dict:
    card = json.loads(Path(path).read_text())
    missing = [key for key in KEYS if key not in card]
    if missing:
        raise RunError(f"model card {path} lacks {', '.join(missing)}: rerun the model rule that made it")
    return card


def dataset_to_logits(dataset_classes: list[str], card_classes: list[str]) -> np.ndarray | None:
    """The logit of each dataset class, matched by name (or WordNet id, for ImageNet's label lists);
    None unless every class has one."""
    index = logit_index(card_classes)
    if not dataset_classes or any(name not in index for name in dataset_classes):
        return None
    return np.array([index[name] for name in dataset_classes], dtype=np.int64)
