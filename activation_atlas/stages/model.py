"""Stage model (rules/model.smk): train the demo CNN or the demo ViT, or load a model the workflow does
not train; either way describe it in the model card the later stages read."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from activation_atlas.data.image_folder import load_all, scan_image_folder
from activation_atlas.formats.model_card import write_card
from activation_atlas.models.capture import layer_names, nearest_layers, resolve_layers
from activation_atlas.models.grids import decide_layer_grids, parse_grid
from activation_atlas.models.labels import count_logits, logit_names
from activation_atlas.models.loading import build_model, load_model
from activation_atlas.models.normalised import layers_read_through_norms
from activation_atlas.models.training import accuracy, train_classifier
from activation_atlas.runtime import RunError, configure_torch, derive_seed, write_bytes, write_json


@dataclass(frozen=True)
class Training:
    seed: int
    input_size: int  # the side the images are trained at (the model's input size)
    model: dict  # the model section (a kind the workflow trains: demo_cnn, demo_vit)


def train_model(dataset_dir, weights_out, training_out, timing_out, settings: Training, threads: int, log) -> None:
    """Train on the generated dataset's train split; write the weights and what the training measured
    (the class names, accuracies and losses the model card takes over)."""
    seed = derive_seed(settings.seed, "train")
    configure_torch(threads, seed, log)
    size = settings.input_size
    train = scan_image_folder(Path(dataset_dir) / "train")
    held_out = scan_image_folder(Path(dataset_dir) / "held_out")
    if train.classes != held_out.classes:
        raise RunError(f"train classes {train.classes} differ from held-out classes {held_out.classes}")
    log(f"loading {len(train)} training and {len(held_out)} held-out images of {size} px")
    x_train, y_train = load_all(train, size), torch.from_numpy(train.labels)
    x_held, y_held = load_all(held_out, size), torch.from_numpy(held_out.labels)
    model = build_model(settings.model, num_classes=len(train.classes))
    model = model.to(memory_format=torch.channels_last)
    training = settings.model["train"]
    history = train_classifier(
        model,
        x_train,
        y_train,
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        lr=training["lr"],
        seed=seed,
        log=log,
    )
    held_out_accuracy = accuracy(model, x_held, y_held)
    train_accuracy = accuracy(model, x_train, y_train)
    log(f"held-out accuracy {held_out_accuracy:.4f}, training accuracy {train_accuracy:.4f}")
    buffer = io.BytesIO()  # a file object keeps the archive's inner name independent of the path
    torch.save(model.state_dict(), buffer)
    write_bytes(weights_out, buffer.getvalue())
    write_json(
        training_out,
        {
            "classes": list(train.classes),
            "held_out_accuracy": round(held_out_accuracy, 6),
            "train_accuracy": round(train_accuracy, 6),
            "held_out_images": len(held_out),
            "train_images": len(train),
            "loss_per_epoch": [round(x, 6) for x in history["loss_per_epoch"]],
        },
    )
    # Wall time varies from run to run, so it lives beside the logs, not in resources/.
    write_json(
        timing_out,
        {
            "training_seconds": round(history["seconds"], 3),
            "images_per_second": round(len(train) * training["epochs"] / history["seconds"], 1),
        },
    )


@dataclass(frozen=True)
class Description:
    model: dict  # the model section
    layers: list[str]  # the layers atlases are made of: each must exist
    input_size: int  # side of the square images fed to the model
    images: dict | None  # the ImageSelection atlases are made of (its class folders may name the logits);
    # None for a model the workflow trained (its training names its classes)


def probed_logits(model, model_cfg: dict, input_size: int) -> int:
    """The number of the model's logits, from one image; a forward pass that fails on it is reported
    in one line, with the input it was given and the settings that shape that input."""
    try:
        return count_logits(model, input_size)
    except RunError:
        raise
    except Exception as error:  # the model's own code refused the input: what it said, and what to set
        convention = model_cfg.get("input") or {}
        channels = convention.get("channels", "rgb")
        given = (
            f"one {input_size}×{input_size} image as {1 if channels == 'gray' else 3} channel(s) ({channels}"
            f"{', × ' + str(convention['scale']) if 'scale' in convention else ''})"
        )
        said = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise RunError(
            f"the model's forward pass refuses {given}: {type(error).__name__}: {said}. If the network "
            f"takes one channel, set model.input.channels: gray; if another image size, model.input_size "
            f"(now {input_size}); if another channel order or pixel scale, model.input "
            f"(channels: bgr, scale: 255)"
        ) from None


def describe_model(weights, card_out, settings: Description, log, training=None) -> None:
    """The model card of the configured network, after checking that it builds, its weights load
    (torchvision fetches them here) and it gives logits for an image of input_size. `training`: what
    train_model measured, for a model the workflow trained (its classes, accuracies and losses go into
    the card)."""
    measured = json.loads(Path(training).read_text()) if training is not None else None
    model = load_model(settings.model, weights, len(measured["classes"]) if measured else None, log=log)
    if measured is not None:
        class_folders = measured.pop("classes")
    else:
        class_folders = list(scan_image_folder(settings.images["folder"], settings.images["layout"]).classes)
    card = describe(model, settings.model, settings.layers, settings.input_size, class_folders, log)
    write_card(card_out, {**card, **(measured or {})})


def describe(model, model_cfg: dict, layers: list[str], input_size: int, class_folders: list[str], log) -> dict:
    """A loaded network's card: the names of its logits, its layers and how each atlas layer's output
    is read as a grid (and, where the logits read it only through a norm, where it is attributed)."""
    names = list(layer_names(model))
    unknown = [layer for layer in layers if layer not in names]
    if unknown:
        raise RunError(f"unknown layer(s) {', '.join(map(repr, unknown))}; {nearest_layers(unknown[0], names)}")
    n_logits = probed_logits(model, model_cfg, input_size)
    log(f"{model_cfg['kind']} model {model_cfg['name']} loaded: {len(names)} layers, {n_logits} logits")
    modules = resolve_layers(model, layers, names)
    grids = decide_layer_grids(model, modules, input_size, model_cfg.get("layer_grids") or {}, log=log)
    for layer, grid in grids.items():
        log(f"layer {layer} is read as {grid}")
    read_through = layers_read_through_norms(
        model, modules, {layer: parse_grid(grids.get(layer, "maps")) for layer in layers}, input_size, "cpu"
    )
    for layer, (norm, takes) in read_through.items():
        log(
            f"layer {layer}: the logits read it only through {norm}, a norm blind to its input's scale that takes "
            f"{takes}, so its own attribution h·∂logit/∂h is float rounding or adds up to it; it is attributed at "
            f"{norm}'s output less its bias, each position by its share with {norm}'s scale held"
        )
    attributed_at = {layer: reading.norm for layer, reading in read_through.items()}
    return {
        "model": model_cfg["name"],
        "kind": model_cfg["kind"],
        "classes": logit_names(model_cfg, n_logits, class_folders, log),
        "layers": names,
        "held_out_accuracy": None,
        **({"layer_grids": grids} if grids else {}),
        **({"attributed_at": attributed_at} if attributed_at else {}),
    }
