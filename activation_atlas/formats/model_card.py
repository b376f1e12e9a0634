"""The model card, resources/models/<name>/model.json: what the later stages need to know of the
model (the names of its logits, its layers) and how well it classifies."""
from __future__ import annotations

import json
from pathlib import Path

from activation_atlas.runtime import write_json

# Every card has these keys; held_out_accuracy is null for a model the workflow did not evaluate.
KEYS = ("model", "kind", "classes", "layers", "held_out_accuracy")
# A card of a model the workflow trained (demo_cnn) also has these.
TRAINING_KEYS = ("train_accuracy", "held_out_images", "train_images", "loss_per_epoch")


def write_card(path: Path | str, card: dict) -> None:
    missing = [key for key in KEYS if key not in card]
    unknown = [key for key in card if key not in KEYS + TRAINING_KEYS]
    if missing or unknown:
        raise ValueError(f"model card {path}: missing keys {missing}, unknown keys {unknown}")
    write_json(path, card)


def read_card(path: Path | str) -> dict:
    card = json.loads(Path(path).read_text())
    missing = [key for key in KEYS if key not in card]
    if missing:
        raise ValueError(f"model card {path} lacks {', '.join(missing)}: rerun the model rule that made it")
    return card
