"""Stage extract (rules/extract.smk): the dataset through the model, shard by shard, one activation
file per layer; then each layer's shards merged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activation_atlas.algorithms.class_atlas import resolve_class
from activation_atlas.algorithms.extract import ExtractSettings, ImageBatches, extract_activations
from activation_atlas.data.image_folder import ImageSelection, select_images
from activation_atlas.data.sources import FolderImages
from activation_atlas.formats.activations import ActivationFile, merge_shards
from activation_atlas.formats.model_card import dataset_to_logits, read_card, write_card
from activation_atlas.models.capture import layer_names, resolve_layers
from activation_atlas.models.grids import card_layer_grid
from activation_atlas.models.labels import NAMING_HINT, abbreviated
from activation_atlas.models.loading import load_described_model
from activation_atlas.runtime import configure_torch, resolve_device
from activation_atlas.workflow.jobs import shard_images


@dataclass(frozen=True)
class Extraction:
    seed: int
    device: str
    layers: list[str]
    shard: int
    images: dict  # an ImageSelection
    input_size: int  # side of the square images fed to the model
    dataset: dict  # the dataset section (on_unreadable; recorded in the files)
    model: dict  # the model section
    extract: dict  # the extract section
    named_classes: list  # the classes the class atlases and comparisons name (names or indices)


# Up to this many logits, attribution covers every class unless extract.attribution_top_k says
# otherwise; beyond, each image's DEFAULT_TOP_K highest logits after the classes the run names: one
# backward pass per attributed class and batch would otherwise cost hundreds of forward passes.
ALL_CLASSES_UP_TO = 32
DEFAULT_TOP_K = 5


def attributed_classes(ex: dict, class_names: list[str], named: list, log) -> tuple[int | None, tuple[int, ...]]:
    """(top k, classes always attributed) for extract_activations, said in the log."""
    if not ex["attribution"]:
        return None, ()
    top_k = ex["attribution_top_k"]
    if top_k is None and len(class_names) <= ALL_CLASSES_UP_TO:
        log(f"attribution to all {len(class_names)} classes: {len(class_names)} backward passes a batch")
        return None, ()
    always = tuple(dict.fromkeys(resolve_class(spec, class_names) for spec in named))
    why = ""
    if top_k is None:
        top_k = DEFAULT_TOP_K
        why = (
            f" ({len(class_names)} logits and no extract.attribution_top_k: attributing every class would take "
            f"{len(class_names)} backward passes a batch; set attribution_top_k to choose)"
        )
    log(
        f"attribution to each image's {top_k} highest logits"
        + (f" after the {len(always)} class{'es' if len(always) > 1 else ''} the class atlases name" if always else "")
        + f": {top_k + len(always)} backward passes a batch{why}"
    )
    return top_k, always


def extract(weights, model_card, out_paths: dict, settings: Extraction, threads: int, log) -> dict:
    """Shard `shard` of extract.shards: its run of whole batches of the dataset, one file per layer."""
    configure_torch(threads, settings.seed, log)
    device = resolve_device(settings.device)
    folder = select_images(ImageSelection(**settings.images), settings.seed, log)
    source = FolderImages(folder, settings.model["resize"], settings.dataset["on_unreadable"])
    card = read_card(model_card)
    model = load_described_model(settings.model, weights, card, device)
    return extract_from(model, card, source, out_paths, settings, device, log)


def extract_from(model, card: dict, source, out_paths: dict, settings: Extraction, device: str, log) -> dict:
    """extract, of a loaded model (taking [0, 1] RGB, on `device`) and its card, from an image source
    (data/sources.py; settings.images is not read)."""
    ex = settings.extract
    images = shard_images(len(source), ex["batch_size"], settings.shard, ex["shards"])
    modules = resolve_layers(model, settings.layers, layer_names(model))
    grids = {layer: card_layer_grid(card, layer) for layer in settings.layers}
    attributed_at = {layer: norm for layer, norm in card.get("attributed_at", {}).items() if layer in settings.layers}
    size = settings.input_size
    log(
        f"extracting {', '.join(settings.layers)} from images {images.start}–{images.stop - 1} (shard "
        f"{settings.shard + 1} of {ex['shards']}) at {size} px on {device}"
    )
    # The number of shards is left out: the merged files are the same for any.
    recorded = {k: v for k, v in ex.items() if k != "shards"}
    provenance = {
        "seed": settings.seed,
        "model": settings.model["name"],
        "classes": list(source.classes),
        "shard": [settings.shard, ex["shards"]],
        "config": {"dataset": settings.dataset, "model": settings.model, "extract": recorded},
    }
    if source.empty_classes:  # only then: a clean dataset's files stay as they were
        provenance["empty_class_folders"] = list(source.empty_classes)
    top_k, always = attributed_classes(ex, card["classes"], settings.named_classes, log)
    if ex["attribution"]:
        for layer, norm in attributed_at.items():
            log(f"layer {layer} is attributed at the output of {norm}, the norm the logits read it through")
    batches = ImageBatches(lambda idx: source.read(idx, size, log), source.labels, ex["batch_size"], size, images)
    return extract_activations(
        model,
        modules,
        batches,
        len(images),
        {layer: Path(p) for layer, p in out_paths.items()},
        ExtractSettings.from_section(ex, settings.seed, top_k, always),
        provenance=provenance,
        grids=grids,
        attributed_at=attributed_at,
        device=device,
        log=log,
    )


def merge_activations(shard_paths, out_path, log) -> None:
    rows = merge_shards([Path(p) for p in shard_paths], Path(out_path))
    log(f"merged {len(shard_paths)} shard(s): {rows} activations in {out_path}")


def evaluate_model(activations_path, model_card, card_out, log) -> None:
    """The run's model card: the model's card and its top-1 accuracy on the extracted images."""
    write_card(card_out, evaluated_card(read_card(model_card), activations_path, log))


def evaluated_card(card: dict, activations_path, log) -> dict:
    """The card with the model's top-1 accuracy on the extracted images, where the dataset's class names
    name its logits. Near-chance accuracy is warned of: the usual cause of an atlas of noise is an input
    the model does not expect."""
    with ActivationFile(activations_path) as acts:
        dataset_classes = acts.classes
        labels, predicted = acts.image_predictions()
    to_logit = dataset_to_logits(dataset_classes, card["classes"])
    labelled = labels >= 0
    accuracy = chance = None
    if to_logit is None or not labelled.any():
        log(
            f"accuracy not measured: the dataset's classes ({abbreviated(dataset_classes, 5)}) "
            "do not all name one of the model's logits; "
            f"{NAMING_HINT}"
        )
    else:
        accuracy = float(np.mean(to_logit[labels[labelled]] == predicted[labelled]))
        chance = 1.0 / len(dataset_classes)
        log(f"top-1 accuracy on the {int(labelled.sum())} extracted images: {accuracy:.4f} (chance {chance:.4f})")
        if accuracy < 2 * chance:
            log(
                f"WARNING: the model classifies the extracted images at near-chance accuracy ({accuracy:.4f}; "
                f"chance {chance:.4f}). It is probably not seeing its inputs as it was trained to: check "
                "model.normalize / input_size / resize. An atlas of such activations shows noise."
            )
    return {
        **card,
        "extracted_accuracy": None if accuracy is None else round(accuracy, 6),
        "extracted_images": int(labelled.sum()),
        "chance_accuracy": None if chance is None else round(chance, 6),
    }
