"""The settings of a Python API call: a config like a run's (a YAML file or a mapping; the schema's
defaults where it says nothing) with the call's own settings written into their sections, checked by
the workflow's own check, so that a setting means the same, defaults to the same and is refused the
same way as in a config file."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from activation_atlas.runtime import RunError
from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.config_schema import ConfigError

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def read_config(config) -> dict:
    """A config given as a YAML file's path or a mapping (copied); None: an empty one."""
    if config is None:
        return {}
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise RunError(f"config {path}: no such file")
        return yaml.safe_load(path.read_text()) or {}
    if isinstance(config, dict):
        return copy.deepcopy(config)
    raise RunError(f"config is a {type(config).__name__}: give the path of a YAML file or a dict")


def with_settings(config: dict, top: dict, sections: dict[str, dict]) -> dict:
    """The config with the call's settings written in: top-level keys and section keys given (not None)."""
    config = copy.deepcopy(config)
    config.update({key: value for key, value in top.items() if value is not None})
    for section, values in sections.items():
        given = {key: value for key, value in values.items() if value is not None}
        if given:
            config[section] = {**config.get(section, {}), **given}
    return config


def checked(config: dict) -> dict:
    """The config with its defaults filled in, checked as the workflow checks one (its files need not
    exist, its model and images may be objects handed to the API); a bad value is a one-line RunError."""
    config = copy.deepcopy(config)
    try:
        check_config(config, SCHEMA, check_files=False, workflow=False)
    except ConfigError as error:
        raise RunError(str(error)) from None
    return config
