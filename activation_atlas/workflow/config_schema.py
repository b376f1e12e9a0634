"""A config checked against a JSON schema (which also fills in its defaults), every violation said in
one line naming the key, the value given and what would be valid."""

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

# How the schema's bounds and types read in a message.
BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
    "minItems": "a list of at least",
    "maxItems": "a list of at most",
    "maxLength": "at most",
}
TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


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
    conditions = [
        f"{key_name([*error.absolute_path][:-1] + [name])} is {shown(rule['const'])}"
        for name, rule in node["if"].get("properties", {}).items()
        if "const" in rule
    ]
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
        missing = (
            key if error.validator != "required" else key_name([*error.absolute_path, error.message.split("'")[1]])
        )
        return f"{missing} is required when {condition}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{key_name([*error.absolute_path, missing])} is required"
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
