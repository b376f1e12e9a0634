"""The run's configuration, checked before any job runs: first the schema (which also fills in the
defaults), then what a schema cannot express (layers and classes of models whose names are known,
per-layer overrides of layers not in the run, ordered ranges, keys that do not apply to the chosen
kind). Every problem is one line naming the key, the value given and what would be valid."""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

# The one pattern of every name that becomes a folder or file name (run, dataset, model, layers):
# a single path component, so no name can reach outside the run's own folders.
PATH_COMPONENT = "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
PATH_COMPONENT_RULE = "one folder name: letters, digits, '_', '-' and '.', not starting with '.'"

# Keys that apply to some kinds only: set for another kind they would be ignored, so they are errors.
KIND_ONLY_KEYS = {
    "dataset": {
        "image_size": ["generated"], "train_per_class": ["generated"], "held_out_per_class": ["generated"],
        "path": ["image_folder"], "url": ["download"], "sha256": ["download"],
        "subdir": ["image_folder", "download"],
    },
    "model": {
        "channels": ["demo_cnn"], "train": ["demo_cnn"],
        "url": ["inceptionv1", "user"], "sha256": ["inceptionv1", "user"], "checkpoint": ["inceptionv1", "user"],
        "architecture": ["torchvision"], "weights": ["torchvision"],
        "factory": ["user"], "kwargs": ["user", "torchvision"], "python_path": ["user"],
        "layer_grids": ["torchvision", "user"],
    },
}
# How the schema's bounds and types read in a message.
BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
          "exclusiveMaximum": "less than", "minItems": "a list of at least", "maxItems": "a list of at most",
          "maxLength": "at most"}
TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
              "array": "a list", "object": "a mapping", "null": "null"}


class ConfigError(ValueError):
    """A configuration the workflow cannot run: the message names the key, the value and what is valid."""


@functools.lru_cache(maxsize=4)
def load_schema(path: Path | str) -> dict:
    """The schema, read once per process (validation does not modify it)."""
    return yaml.safe_load(Path(path).read_text())


def key_name(path) -> str:
    """A location in the config as it is written: render.transforms.scale_exponents[1]."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def shown(value) -> str:
    """A config value as YAML would spell it (null, true, [1, 2]), shortened when long."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def filling_defaults(validator_class):
    """The validator class, extended to write each property's schema default into the config where it
    is missing (the config the rules see is complete)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": properties_with_defaults})


def condition_of(error, schema: dict) -> str:
    """For an error inside an if/then branch, the `if` it depends on, as 'model.kind is torchvision'."""
    path = list(error.schema_path)
    if "then" not in path:
        return ""
    node = schema
    for part in path[: path.index("then")]:
        node = node[part]
    conditions = [f"{key_name([*error.absolute_path][:-1] + [name])} is {shown(rule['const'])}"
                  for name, rule in node["if"].get("properties", {}).items() if "const" in rule]
    return " and ".join(conditions)


def schema_error_line(error, schema: dict) -> str:
    """One line for a schema violation: the key, the value and what would be valid."""
    key = key_name(error.absolute_path) or "the top level"
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        valid = ", ".join(error.schema.get("properties", {}))
        where = f"in {key}" if error.absolute_path else "at the top level"
        return f"unknown key {', '.join(unknown)} {where}; valid keys: {valid}"
    condition = condition_of(error, schema)
    if condition and (error.validator == "required" or error.instance is None):
        missing = key if error.validator != "required" else key_name(
            [*error.absolute_path, error.message.split("'")[1]])
        return f"{missing} is required when {condition}"
    if error.validator == "pattern" and error.validator_value == PATH_COMPONENT:
        return f"{key} = {shown(error.instance)}: must be {PATH_COMPONENT_RULE}"
    bound = BOUNDS.get(error.validator)
    if bound:
        items = {"minItems": " items", "maxItems": " items", "maxLength": " characters"}.get(error.validator, "")
        return f"{key} = {shown(error.instance)}: must be {bound} {shown(error.validator_value)}{items}"
    if error.validator == "enum":
        return f"{key} = {shown(error.instance)}: must be one of {', '.join(map(shown, error.validator_value))}"
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{key} = {shown(error.instance)}: must be {' or '.join(TYPE_NAMES.get(k, k) for k in kinds)}"
    return f"{key} = {shown(error.instance)}: {error.message}"


def check_schema(config: dict, schema: dict) -> None:
    """Fill in the schema's defaults; raise ConfigError for the most relevant violation, if any."""
    validator = filling_defaults(Draft202012Validator)(schema)
    error = best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(schema_error_line(error, schema))


def check_kind_only_keys(given: dict, config: dict) -> None:
    """Keys the user set (`given`, before defaults) that the section's kind ignores."""
    for section, keys in KIND_ONLY_KEYS.items():
        values, kind = given.get(section) or {}, config[section]["kind"]
        for key, kinds in keys.items():
            if key in values and values[key] not in (None, "", [], {}) and kind not in kinds:
                raise ConfigError(f"{section}.{key} applies only when {section}.kind is {' or '.join(kinds)} "
                                  f"({section}.kind is {kind}): remove it")


def known_layers(model: dict) -> tuple[str, ...] | None:
    """The layers of a model whose names are known without building it."""
    if model["kind"] == "demo_cnn":
        return tuple(f"conv{k + 1}" for k in range(len(model["channels"])))
    if model["kind"] == "inceptionv1":
        from activation_atlas.models.inceptionv1 import InceptionV1

        return InceptionV1.layer_names()
    return None


def check_layers(config: dict) -> None:
    """Layers exist (where known); per-layer overrides and the class atlas name layers of the run."""
    valid = known_layers(config["model"])
    if valid is not None:
        for index, layer in enumerate(config["layers"]):
            if layer not in valid:
                raise ConfigError(f"layers[{index}] = {shown(layer)}: {config['model']['kind']} has no such layer; "
                                  f"valid: {', '.join(valid)}")
    for key, overrides in (("layout.per_layer", config["layout"]["per_layer"]),
                           ("render.per_layer", config["render"]["per_layer"]),
                           ("model.layer_grids", config["model"].get("layer_grids") or {})):
        for layer in overrides:
            if layer not in config["layers"]:
                raise ConfigError(f"{key}.{layer}: {shown(layer)} is not one of the run's layers "
                                  f"({', '.join(config['layers'])}): add it to layers or remove the override")
    layer = config["class_atlas"]["layer"]
    if layer is not None and layer not in config["layers"]:
        raise ConfigError(f"class_atlas.layer = {shown(layer)}: not one of the run's layers "
                          f"({', '.join(config['layers'])})")


def known_class_names(config: dict) -> list[str] | None:
    """The names of the model's logits where they are known before any job runs."""
    from activation_atlas.labels import builtin_labels, configured_labels

    model, dataset = config["model"], config["dataset"]
    if model["labels"] is not None:
        try:
            return configured_labels(model["labels"])
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if model["kind"] == "inceptionv1":
        return builtin_labels(model)
    if model["kind"] == "demo_cnn" and dataset["kind"] == "generated":
        from activation_atlas.data.generated import class_specs

        return sorted(spec.name for spec in class_specs())
    return None


def check_classes(config: dict) -> None:
    """Class atlases need attributions; their classes exist (where the names are known)."""
    section = config["class_atlas"]
    if (section["classes"] or section["comparisons"]) and not config["extract"]["attribution"]:
        raise ConfigError("class_atlas.classes and class_atlas.comparisons need attributions: "
                          "set extract.attribution: true")
    names = known_class_names(config)
    given = [(f"class_atlas.classes[{i}]", spec) for i, spec in enumerate(section["classes"])]
    given += [(f"class_atlas.comparisons[{i}][{j}]", spec)
              for i, pair in enumerate(section["comparisons"]) for j, spec in enumerate(pair)]
    if names is not None:
        from activation_atlas.class_atlas import resolve_class
        from activation_atlas.labels import abbreviated

        for key, spec in given:
            try:
                resolve_class(spec, names)
            except ValueError as error:
                raise ConfigError(f"{key} = {shown(spec)}: {error} (the classes: {abbreviated(names, 20)})") from None
    for i, (a, b) in enumerate(section["comparisons"]):
        if str(a) == str(b):
            raise ConfigError(f"class_atlas.comparisons[{i}] = {shown([a, b])}: compares a class with itself; "
                              "give two different classes")


def check_ranges(config: dict) -> None:
    """Ranges given as [low, high] are ordered."""
    sections = [("render.transforms", config["render"]["transforms"])]
    sections += [(f"render.per_layer.{layer}.transforms", values["transforms"])
                 for layer, values in config["render"]["per_layer"].items() if "transforms" in values]
    for key, transforms in sections:
        low, high = transforms["scale_exponents"]
        if low > high:
            raise ConfigError(f"{key}.scale_exponents = {shown([low, high])}: must be [low, high] with "
                              f"low ≤ high (scales are scale_base ** n, n drawn from low to high)")


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
        raise ConfigError(f"extract.shards = {shards}: more extraction jobs than the run's {images} images; "
                          f"valid: 1 to {images}")
    points = images * config["extract"]["positions_per_image"]
    if config["grid"]["min_count"] >= points:
        raise ConfigError(f"grid.min_count = {config['grid']['min_count']}: no cell can hold more than that, the "
                          f"run has {points} activations per layer; valid: 0 to {points - 1}")


def check_model_source(config: dict) -> None:
    model = config["model"]
    if model["url"] and model["checkpoint"]:
        raise ConfigError(f"model.url ({model['url']}) and model.checkpoint ({model['checkpoint']}) are both set: "
                          "give url to download the weights, or checkpoint for a file on disk (set the other "
                          "to null)")


def check_paths(config: dict) -> None:
    """Files and folders the config names exist (relative paths: from the working directory)."""
    dataset, model = config["dataset"], config["model"]
    if dataset["kind"] == "image_folder" and not Path(dataset["path"]).is_dir():
        raise ConfigError(f"dataset.path = {shown(dataset['path'])}: no such folder")
    if model["checkpoint"] and not Path(model["checkpoint"]).is_file():
        raise ConfigError(f"model.checkpoint = {shown(model['checkpoint'])}: no such file")
    for index, folder in enumerate(model["python_path"]):
        if not Path(folder).is_dir():
            raise ConfigError(f"model.python_path[{index}] = {shown(folder)}: no such folder")


def check_config(config: dict, schema_path: Path | str) -> None:
    """Fill in the config's defaults and check it; raise ConfigError (one line) for the first problem."""
    given = copy.deepcopy(config)
    check_schema(config, load_schema(schema_path))
    check_kind_only_keys(given, config)
    check_model_source(config)
    check_paths(config)
    check_layers(config)
    check_classes(config)
    check_ranges(config)
    check_sizes(config)
