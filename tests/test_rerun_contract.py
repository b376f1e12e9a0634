"""The rerun contract: each rule's params hold exactly the settings its stage uses, so changing one
config value makes Snakemake see changed params in exactly the jobs that read it, no more, no fewer.

The shared run of config/ci.yaml, its temporary files kept (so every job's outputs exist); then, per
config key, Snakemake's --summary of the run under a config with only that key changed, whose status
column says "params changed" for every output of a job whose params differ from those it ran with.
(--list-changes params cannot serve: Snakemake 9.27 lists every output there, changed or not.)
"""

from pathlib import Path

import pytest
import yaml

from tools.runs import REPO, snakemake

# Every test here runs Snakemake.
pytestmark = pytest.mark.workflow

CONFIG = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())

# key path → value → (rules whose jobs read it, the one layer whose jobs alone read it or None)
CASES = [
    (
        ("seed",),
        8,
        {
            "generate_dataset",
            "train_model",
            "extract",
            "layout",
            "bin_cells",
            "render_icons",
            "atlas_metrics",
            "learn_dictionary",
            "feature_cells",
            "feature_icons",
            "neuron_cells",
            "neuron_icons",
            "class_cells",
            "class_icons",
            "viewer",
            "amplitude_spectrum",
            "manifest",
            "attack_images",
            "attack_patches",
            "attack_shard",
            "attack_table",
        },
        None,
    ),
    (
        ("device",),
        "auto",
        {"extract", "render_icons", "class_icons", "attack_shard", "learn_dictionary", "feature_icons", "neuron_icons"},
        None,
    ),
    (("threads",), 2, set(), None),  # a job's resources, not a setting of any stage
    # Its jobs' environment; numerics.json, an input of the first float-computing jobs, reruns the rest.
    (("portable",), True, {"numerics"}, None),
    (("dataset", "train_per_class"), 41, {"generate_dataset", "extract"}, None),
    (("dataset", "max_images"), 300, {"extract", "viewer", "amplitude_spectrum", "attack_patches"}, None),
    (
        ("model", "train", "epochs"),
        9,
        {
            "train_model",
            "describe_model",
            "extract",
            "render_icons",
            "class_icons",
            "feature_icons",
            "neuron_icons",
            "attack_shard",
        },
        None,
    ),
    (
        ("model", "resize"),
        "resize",
        {
            "train_model",
            "describe_model",
            "extract",
            "render_icons",
            "class_icons",
            "feature_icons",
            "neuron_icons",
            "viewer",
            "amplitude_spectrum",
            "attack_patches",
            "attack_shard",
            "attack_table",
        },
        None,
    ),
    (("extract", "positions_per_image"), 3, {"extract"}, None),
    (("layout", "n_neighbors"), 9, {"layout", "class_cells"}, None),
    (("layout", "min_dist"), 0.1, {"layout", "class_cells"}, None),
    (("layout", "scatter_size"), 400, {"layout", "class_cells", "feature_cells"}, None),
    (("layout", "per_layer", "conv1", "metric"), "cosine", {"layout", "atlas_metrics"}, "conv1"),
    (("layout", "per_layer", "conv2"), {"min_dist": 0.2}, {"layout"}, "conv2"),
    (("grid", "min_count"), 2, {"bin_cells"}, None),
    (("grid", "samples_per_cell"), 3, {"bin_cells", "class_cells", "feature_cells", "neuron_cells"}, None),
    (("render", "steps"), 20, {"render_icons", "class_icons", "feature_icons", "neuron_icons"}, None),
    # The icons files record the whole render section, so every render job reads each layer's overrides
    # (conv2: conv1 is rendered with maco, and its icon size also names the amplitude spectrum it reads).
    (
        ("render", "per_layer", "conv2", "icon_size"),
        24,
        {"render_icons", "class_icons", "feature_icons", "neuron_icons"},
        None,
    ),
    (
        ("render", "spectrum_images"),
        300,
        {"amplitude_spectrum", "render_icons", "class_icons", "feature_icons", "neuron_icons"},
        None,
    ),
    (("class_atlas", "top_n"), 50, {"class_cells"}, None),
    (("class_atlas", "grid_size"), 4, {"class_cells", "class_icons", "viewer"}, None),
    (("montage", "density"), "size", {"montage", "class_montage", "feature_montage"}, None),
    (("montage", "cell_px"), 8, {"montage", "class_montage", "feature_montage", "viewer"}, None),
    (("dictionary", "top_k"), 3, {"learn_dictionary"}, None),
    (("dictionary", "per_layer"), {"conv3": {"epochs": 5}}, {"learn_dictionary"}, "conv3"),
    (("dictionary", "n_neighbors"), 5, {"feature_cells"}, None),
    (("viewer", "sample_px"), 32, {"viewer"}, None),
    (("metrics", "trustworthiness_neighbors"), 5, {"atlas_metrics"}, None),
    (("attacks", "max_images"), 6, {"attack_images"}, None),
    (("attacks", "images_seen_in_training"), True, {"attack_images"}, None),
    (("attacks", "cells"), 1, {"attack_patches"}, None),
    (("attacks", "batch_size"), 2, {"attack_shard"}, None),
    (("attacks", "static"), {"size": 0.25, "corner": "top_left"}, {"attack_table"}, None),
]


# The provenance rule records the config's hash, so every changed value reruns it.
RECORDS_THE_WHOLE_CONFIG = {"provenance"}


def with_value(config: dict, path: tuple, value) -> dict:
    changed = yaml.safe_load(yaml.safe_dump(config))
    section = changed
    for key in path[:-1]:
        section = section.setdefault(key, {})
    section[path[-1]] = value
    return changed


def summary(workdir: Path, config: dict) -> list[tuple[str, str, str]]:
    """(rule, output file, status) of every output of the run's DAG under `config`."""
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "changed.yaml", "--summary")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:] if line.count("\t") >= 5]
    return [(row[2], row[0], row[4]) for row in rows]


def belongs_to(path: str, layer: str) -> bool:
    parts = Path(path).parts
    return layer in parts or Path(path).stem == layer


@pytest.fixture(scope="module")
def kept_run(first_run):
    workdir = first_run  # run with --notemp
    rows = summary(workdir, CONFIG)
    assert rows and not [row for row in rows if row[2] != "ok"], "an unchanged config must change nothing"
    return workdir, rows


def test_the_run_covers_every_rule_with_params(kept_run):
    _, rows = kept_run
    rules = {rule for rule, _, _ in rows}
    assert set().union(*(rules for _, _, rules, _ in CASES)) <= rules
    assert {f for _, f, _ in rows if "chunk" in f}, "render chunks must be in the DAG (kept with --notemp)"


@pytest.mark.parametrize("path, value, rules, layer", CASES, ids=[".".join(c[0]) for c in CASES])
def test_a_changed_value_changes_the_params_of_exactly_the_jobs_that_read_it(kept_run, path, value, rules, layer):
    workdir, _ = kept_run
    rows = summary(workdir, with_value(CONFIG, path, value))
    # Jobs behind a checkpoint whose own params changed (render_icons behind bin_cells) are not in the
    # DAG until it reruns: the contract is checked on the jobs Snakemake can see.
    expected = {(rule, f) for rule, f, _ in rows if rule in rules and (layer is None or belongs_to(f, layer))}
    assert bool(expected) == bool(rules)
    expected |= {(rule, f) for rule, f, _ in rows if rule in RECORDS_THE_WHOLE_CONFIG}
    changed = {(rule, f) for rule, f, status in rows if status == "params changed"}
    assert changed == expected, f"also changed: {sorted(changed - expected)}; not changed: {sorted(expected - changed)}"
