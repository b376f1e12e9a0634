"""Each file format is declared once, in its module of activation_atlas/formats: the table of formats
in docs/architecture.md must say what the modules declare, and the files a run writes must hold what
they declare."""

import importlib
import json
import re

import h5py
import pytest

from tools.runs import REPO, load_config

FORMAT_OF_STAGE = {
    "activations": "activations",
    "layout": "layout",
    "cells": "cells",
    "icons": "icons",
    "spectrum": "spectrum",
    "dictionary": "dictionary",
    "attack_patches": "attack_patches",
    "attack_results": "attack_results",
}


def documented_format_rows() -> dict[str, tuple[set[str], set[str]]]:
    """module name → (names in the datasets column, names in the attributes column) of the table."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text[text.index("## File formats") :]
    section = section[: section.index("\n## ")]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        module = re.fullmatch(r"`activation_atlas/formats/(\w+)\.py`", cells[1]) if len(cells) == 4 else None
        if module:
            rows[module.group(1)] = (set(re.findall(r"`(\w+)`", cells[2])), set(re.findall(r"`(\w+)`", cells[3])))
    return rows


def declared(name: str) -> tuple[set[str], set[str]]:
    module = importlib.import_module(f"activation_atlas.formats.{name}")
    if name == "model_card":
        return set(module.KEYS + module.TRAINING_KEYS + module.GRID_KEYS + module.RUN_KEYS), set()
    return set(module.DATASETS), set(module.ATTRIBUTES)


def test_the_docs_describe_every_format_as_its_module_declares_it():
    rows = documented_format_rows()
    modules = {p.stem for p in (REPO / "activation_atlas" / "formats").glob("*.py") if p.stem != "__init__"}
    assert set(rows) == modules
    for name, (datasets, attributes) in rows.items():
        assert (datasets, attributes) == declared(name), name


@pytest.mark.workflow
def test_every_file_of_a_run_holds_what_its_format_declares(first_run):
    results = first_run / "results" / load_config("config/ci.yaml")["run"]
    seen = set()
    for path in sorted(results.rglob("*.h5")):
        with h5py.File(path, "r") as f:
            name = FORMAT_OF_STAGE[f.attrs["stage"]]
            datasets, attributes = declared(name)
            assert set(f.keys()) <= datasets, path
            assert set(f.attrs) <= attributes, path
            for dataset in f.values():
                assert {"unit", "axes"} <= set(dataset.attrs), f"{path}:{dataset.name}"
            seen.add(name)
    assert seen == set(FORMAT_OF_STAGE.values())
    from activation_atlas.formats.model_card import GRID_KEYS, RUN_KEYS

    card = json.loads(next((first_run / "resources" / "models").glob("*/model.json")).read_text())
    keys, _ = declared("model_card")
    # The demo model's card: every key, the training ones too; its layers are all (B, C, H, W) maps.
    assert set(card) == keys - set(RUN_KEYS) - set(GRID_KEYS)
    run_card = json.loads((results / "model.json").read_text())
    assert run_card == {**card, **{key: run_card[key] for key in RUN_KEYS}}
