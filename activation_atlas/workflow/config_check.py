"""The run's configuration, checked before any job runs: first the schema (which also fills in the
defaults), then what a schema cannot express (layers and classes of models whose names are known,
per-layer overrides of layers not in the run, ordered ranges, keys that do not apply to the chosen
kind). Every problem is one line naming the key, the value given and what would be valid."""

from __future__ import annotations

import copy
from pathlib import Path

from activation_atlas.models.kinds import KINDS, kind_only_keys, kinds_taking, model_kind
from activation_atlas.models.labels import abbreviated, builtin_labels, configured_labels
from activation_atlas.workflow.config_schema import ConfigError, check_schema, load_schema, shown
from activation_atlas.workflow.settings import attack_pairs, layer_section, picture_folder

# Dataset keys that apply to some kinds only. (The model's are declared by the model kinds.)
DATASET_KIND_ONLY_KEYS = {
    "image_size": ["generated"],
    "train_per_class": ["generated"],
    "held_out_per_class": ["generated"],
    "path": ["image_folder"],
    "url": ["download"],
    "sha256": ["download"],
    "subdir": ["image_folder", "download"],
}


def kind_only_keys_by_section() -> dict[str, dict[str, list[str]]]:
    """For each section with kinds, the keys that apply to some kinds only and those kinds."""
    return {"dataset": DATASET_KIND_ONLY_KEYS, "model": {key: kinds_taking(key) for key in kind_only_keys()}}


def check_kind_only_keys(given: dict, config: dict) -> None:
    """Keys the user set (`given`, before defaults) that the section's kind ignores: set for another
    kind they would be ignored, so they are errors."""
    for section, keys in kind_only_keys_by_section().items():
        values, kind = given.get(section) or {}, config[section]["kind"]
        for key, kinds in keys.items():
            if key in values and values[key] not in (None, "", [], {}, False) and kind not in kinds:
                raise ConfigError(
                    f"{section}.{key} applies only when {section}.kind is {' or '.join(kinds)} "
                    f"({section}.kind is {kind}): remove it"
                )


def known_layers(model: dict) -> tuple[str, ...] | None:
    """The layers of a model whose names are known without loading its weights."""
    known = model_kind(model["kind"]).known_layers
    try:
        return known(model) if known is not None else None
    except ValueError as error:  # a network these settings cannot build
        raise ConfigError(str(error)) from None


def check_layers(config: dict) -> None:
    """Layers exist (where known); per-layer overrides and the class atlas name layers of the run."""
    valid = known_layers(config["model"])
    if valid is not None:
        for index, layer in enumerate(config["layers"]):
            if layer not in valid:
                raise ConfigError(
                    f"layers[{index}] = {shown(layer)}: {config['model']['kind']} has no such layer; "
                    f"valid: {', '.join(valid)}"
                )
    for key, overrides in (
        ("layout.per_layer", config["layout"]["per_layer"]),
        ("render.per_layer", config["render"]["per_layer"]),
        ("model.layer_grids", config["model"].get("layer_grids") or {}),
        ("dictionary.per_layer", config["dictionary"]["per_layer"]),
    ):
        for layer in overrides:
            if layer not in config["layers"]:
                raise ConfigError(
                    f"{key}.{layer}: {shown(layer)} is not one of the run's layers "
                    f"({', '.join(config['layers'])}): add it to layers or remove the override"
                )
    for index, layer in enumerate(config["dictionary"]["layers"]):
        if layer not in config["layers"]:
            raise ConfigError(
                f"dictionary.layers[{index}] = {shown(layer)}: not one of the run's layers "
                f"({', '.join(config['layers'])})"
            )
    layer = config["class_atlas"]["layer"]
    if layer is not None and layer not in config["layers"]:
        raise ConfigError(
            f"class_atlas.layer = {shown(layer)}: not one of the run's layers ({', '.join(config['layers'])})"
        )


def known_class_names(config: dict) -> list[str] | None:
    """The names of the model's logits where they are known before any job runs."""
    model, dataset = config["model"], config["dataset"]
    if model["labels"] is not None:
        try:
            return configured_labels(model["labels"])
        except ValueError as error:
            raise ConfigError(str(error)) from None
    kind = model_kind(model["kind"])
    if kind.labels_checked_before_jobs:
        return builtin_labels(model)
    if kind.trained and dataset["kind"] == "generated":
        from activation_atlas.data.generated import class_specs

        return sorted(spec.name for spec in class_specs())
    return None


def check_classes(config: dict) -> None:
    """Class atlases need attributions; their classes exist (where the names are known)."""
    section = config["class_atlas"]
    if (section["classes"] or section["comparisons"]) and not config["extract"]["attribution"]:
        raise ConfigError(
            "class_atlas.classes and class_atlas.comparisons need attributions: set extract.attribution: true"
        )
    names = known_class_names(config)
    given = [(f"class_atlas.classes[{i}]", spec) for i, spec in enumerate(section["classes"])]
    given += [
        (f"class_atlas.comparisons[{i}][{j}]", spec)
        for i, pair in enumerate(section["comparisons"])
        for j, spec in enumerate(pair)
    ]
    if names is not None:
        from activation_atlas.algorithms.class_atlas import resolve_class

        for key, spec in given:
            try:
                resolve_class(spec, names)
            except ValueError as error:
                raise ConfigError(f"{key} = {shown(spec)}: {error} (the classes: {abbreviated(names, 20)})") from None
    for i, (a, b) in enumerate(section["comparisons"]):
        if str(a) == str(b):
            raise ConfigError(
                f"class_atlas.comparisons[{i}] = {shown([a, b])}: compares a class with itself; "
                "give two different classes"
            )


def check_attacks(config: dict) -> None:
    """Attacked pairs are comparisons of the run; the static size is one of the sizes; a folder of images exists."""
    section = config["attacks"]
    if not section["enabled"]:
        return
    comparisons = config["class_atlas"]["comparisons"]
    if not comparisons:
        raise ConfigError(
            "attacks.enabled: the attacks take their patches from class comparisons, and "
            "class_atlas.comparisons is empty; add a pair [a, b] there"
        )
    known = [[str(a), str(b)] for a, b in comparisons]
    for i, pair in enumerate(section["pairs"] or []):
        if [str(spec) for spec in pair] not in known:
            raise ConfigError(
                f"attacks.pairs[{i}] = {shown(pair)}: not one of class_atlas.comparisons "
                f"({shown(comparisons)}); add it there or attack one of those"
            )
    if section["static"]["size"] not in section["sizes"]:
        raise ConfigError(
            f"attacks.static.size = {shown(section['static']['size'])}: must be one of attacks.sizes "
            f"({shown(section['sizes'])})"
        )


def check_dictionary(config: dict) -> None:
    """top_k below the atoms where the config fixes their number (else the job checks it, knowing the
    channels); overrides of a layer that learns no dictionary are a mistake."""
    section = config["dictionary"]
    for layer in section["per_layer"]:
        if layer not in section["layers"]:
            raise ConfigError(
                f"dictionary.per_layer.{layer}: {shown(layer)} learns no dictionary (dictionary.layers: "
                f"{', '.join(section['layers']) or 'none'}): add it there or remove the override"
            )
    for layer in section["layers"]:
        values = layer_section(config, "dictionary", layer)
        if values["atoms"] is not None and values["top_k"] >= values["atoms"]:
            raise ConfigError(
                f"dictionary.top_k = {values['top_k']} for {layer}: must be below its {values['atoms']} atoms "
                "(dictionary.atoms); lower top_k or raise atoms"
            )


def check_ranges(config: dict) -> None:
    """Ranges given as [low, high] are ordered."""
    sections = [("render.transforms", config["render"]["transforms"])]
    sections += [
        (f"render.per_layer.{layer}.transforms", values["transforms"])
        for layer, values in config["render"]["per_layer"].items()
        if "transforms" in values
    ]
    for key, transforms in sections:
        low, high = transforms["scale_exponents"]
        if low > high:
            raise ConfigError(
                f"{key}.scale_exponents = {shown([low, high])}: must be [low, high] with "
                f"low ≤ high (scales are scale_base ** n, n drawn from low to high)"
            )


def check_stop_rules(config: dict) -> None:
    """Each layer's stopping rule fits its steps and batches (optvis.render.StopRule)."""
    for layer in config["layers"]:
        render = layer_section(config, "render", layer)
        stop = render["stop"]
        if stop is None:
            continue
        key = (
            f"render.per_layer.{layer}.stop"
            if "stop" in config["render"]["per_layer"].get(layer, {})
            else "render.stop"
        )
        window, prune_at, steps = stop["window"], stop.get("prune_at"), render["steps"]
        if window >= steps:
            raise ConfigError(
                f"{key}.window = {window}: must be less than the steps of layer {layer} ({steps}); "
                "an attempt is checked at the end of each window"
            )
        if prune_at is None:
            continue
        if prune_at % window or prune_at >= steps:
            raise ConfigError(
                f"{key}.prune_at = {prune_at}: must be a multiple of window ({window}) and less than "
                f"the steps of layer {layer} ({steps})"
            )
        if render["batch_size"] % render["attempts"]:
            raise ConfigError(
                f"{key}.prune_at is set and render.batch_size of layer {layer} ({render['batch_size']}) "
                f"is not a multiple of its attempts ({render['attempts']}): an icon's attempts are "
                "compared in one batch"
            )


def image_count(config: dict) -> int | None:
    """How many images the run extracts from, where known before any job runs."""
    dataset = config["dataset"]
    if dataset["kind"] != "generated":
        return dataset["max_images"]
    from activation_atlas.data.generated import class_specs

    per_class = dataset["train_per_class" if config["extract"]["split"] == "train" else "held_out_per_class"]
    count = per_class * len(class_specs())
    return min(count, dataset["max_images"]) if dataset["max_images"] else count


def check_sizes(config: dict) -> None:
    """Counts that cannot exceed the number of images (or activations) the run has."""
    images = image_count(config)
    if images is None:
        return
    shards = config["extract"]["shards"]
    if shards > images:
        raise ConfigError(
            f"extract.shards = {shards}: more extraction jobs than the run's {images} images; valid: 1 to {images}"
        )
    points = images * config["extract"]["positions_per_image"]
    if config["grid"]["min_count"] >= points:
        raise ConfigError(
            f"grid.min_count = {config['grid']['min_count']}: no cell can hold more than that, the "
            f"run has {points} activations per layer; valid: 0 to {points - 1}"
        )


def check_model_kind(config: dict) -> None:
    """A model the workflow trains needs the generated dataset; and what the kind itself requires."""
    model = config["model"]
    kind = model_kind(model["kind"])
    if kind.trained and config["dataset"]["kind"] != "generated":
        with_weights = ", ".join(name for name, other in KINDS.items() if not (other.trained or other.api_only))
        raise ConfigError(
            f"model.kind = {model['kind']} is trained by the workflow on the generated dataset, and "
            f"dataset.kind is {config['dataset']['kind']}: set dataset.kind: generated, or choose a "
            f"model kind with weights ({with_weights})"
        )
    if kind.check is not None:
        try:
            kind.check(config)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def check_model_source(config: dict) -> None:
    model = config["model"]
    if model["url"] and model["checkpoint"]:
        raise ConfigError(
            f"model.url ({model['url']}) and model.checkpoint ({model['checkpoint']}) are both set: "
            "give url to download the weights, or checkpoint for a file on disk (set the other "
            "to null)"
        )


def check_model_input(config: dict) -> None:
    """model.normalize has a mean and a std for each channel the network takes (model.input.channels)."""
    model = config["model"]
    channels = (model.get("input") or {}).get("channels", "rgb")
    wanted = 1 if channels == "gray" else 3
    for key in ("mean", "std"):
        values = (model["normalize"] or {}).get(key)
        if values is not None and len(values) != wanted:
            raise ConfigError(
                f"model.normalize.{key} = {shown(values)} has {len(values)} value(s), but the network "
                f"takes {wanted} channel(s) (model.input.channels: {channels}): give {wanted}"
                + ("; for a one-channel network set model.input.channels: gray" if wanted == 3 else "")
            )


def check_paths(config: dict) -> None:
    """Files and folders the config names exist (relative paths: from the working directory)."""
    dataset, model = config["dataset"], config["model"]
    if dataset["kind"] == "image_folder" and not Path(dataset["path"]).is_dir():
        raise ConfigError(f"dataset.path = {shown(dataset['path'])}: no such folder")
    if model["checkpoint"] and not Path(model["checkpoint"]).is_file():
        raise ConfigError(f"model.checkpoint = {shown(model['checkpoint'])}: no such file")
    attacks = config["attacks"]
    if attacks["enabled"] and attacks["images"] is not None and not Path(attacks["images"]).is_dir():
        raise ConfigError(f"attacks.images = {shown(attacks['images'])}: no such folder")
    pairs = list(attack_pairs(config)) if attacks["pictures"] is not None else []
    for slug in pairs:
        if not Path(picture_folder(config, slug)).is_dir():
            raise ConfigError(
                f"attacks.pictures = {shown(attacks['pictures'])}: no folder {slug!r} in it; it needs one "
                f"folder of pictures for each attacked pair, named {shown(pairs)}"
            )
    for index, folder in enumerate(model["python_path"]):
        if not Path(folder).is_dir():
            raise ConfigError(f"model.python_path[{index}] = {shown(folder)}: no such folder")


# Kinds that describe what the Python API was handed, objects rather than files.
IN_MEMORY_DATASET = "in_memory"


def check_runnable(config: dict) -> None:
    """A config the workflow runs names files, not objects handed to the Python API."""
    dataset, model = config["dataset"]["kind"], config["model"]["kind"]
    if model_kind(model).api_only or dataset == IN_MEMORY_DATASET:
        key, value = ("model.kind", model) if model_kind(model).api_only else ("dataset.kind", dataset)
        raise ConfigError(
            f"{key} = {value}: an object handed to the Python API (activation_atlas.extract), which the workflow "
            "cannot load; describe files instead (model.kind user, timm or torchvision; dataset.kind image_folder)"
        )


def check_config(config: dict, schema_path: Path | str, check_files: bool = True, workflow: bool = True) -> None:
    """Fill in the config's defaults and check it; raise ConfigError (one line) for the first problem.
    check_files=False: the files and folders it names need not be on this machine (a config read for
    its settings, as the GPU check reads the paper's). workflow=False: a config the Python API made,
    whose model or images may be objects it was handed."""
    given = copy.deepcopy(config)
    check_schema(config, load_schema(schema_path))
    if workflow:
        check_runnable(config)
    check_kind_only_keys(given, config)
    check_model_source(config)
    check_model_input(config)
    if check_files:
        check_paths(config)
    check_model_kind(config)
    check_layers(config)
    check_classes(config)
    check_attacks(config)
    check_dictionary(config)
    check_ranges(config)
    check_stop_rules(config)
    check_sizes(config)
