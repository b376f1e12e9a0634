# Validation, the paths and names every rule file uses, and the functions that resolve the config
# into each rule's params. Every rule's params hold exactly the settings its script passes to its
# stage, so a changed value reruns exactly the rules that use it.
import os
import re
import sys

from snakemake.io import is_flagged

from activation_atlas.algorithms.class_atlas import class_slug, comparison_slug
from activation_atlas.workflow.config_check import ConfigError, check_config
from activation_atlas.formats.cells import count_cells
from activation_atlas.workflow.jobs import render_chunk_count
from activation_atlas.models.kinds import model_kind
from activation_atlas.workflow.provenance import PORTABLE_ENVIRONMENT, workflow_facts
from activation_atlas.workflow.run_lock import clear_stale_lock
from activation_atlas.workflow import paths, settings
from activation_atlas.workflow.settings import layer_section, layout_threads, umap_settings

# A bad value stops the workflow here, before any job, with one line naming the key.
try:
    check_config(config, os.path.join(workflow.basedir, "schemas", "config.schema.yaml"))
except ConfigError as error:
    sys.exit(f"config: {error}")

# After an interruption the same command resumes: the lock a killed run of this workflow left is
# removed (profiles/default adds rerun-incomplete). Cluster jobs parse this file too; they must not.
if workflow.is_main_process:
    lock_note = clear_stale_lock()
    if lock_note:
        print(lock_note, file=sys.stderr)


# A run interrupted after a temp file's consumers finished leaves the file behind, and no job of a
# later run removes it. After a successful run, Snakemake's own rule (unless --notemp) decides again
# for every job that makes temp files.
onsuccess:
    for job in workflow.dag.jobs:
        if any(is_flagged(output, "temp") for output in job.output):
            workflow.async_run(workflow.dag.handle_temp(job))


def sorted_keys(value):
    """value with the keys of every mapping in it sorted."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


# Snakemake compares params as text: the order keys are written in a config file must not count as
# a change of settings.
config.update(sorted_keys(config))

# Portable numerics: set here, before any job starts, so that every job inherits them (on a cluster
# too: each job parses this file again).
if config["portable"]:
    os.environ.update(PORTABLE_ENVIRONMENT)

# glibc returns torch's large per-batch buffers to the OS and faults them back in on every batch;
# these thresholds keep them mapped (1.3-2x faster torch stages on CPU). Jobs inherit them.
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "4294967296")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "68719476736")
# torchvision fetches published weights into $TORCH_HOME: keep them with the other resources.
os.environ.setdefault("TORCH_HOME", os.path.abspath(paths.TORCH_HOME))


RUN = config["run"]
LAYERS = config["layers"]
GRIDS = config["grid"]["sizes"]
DATASET = config["dataset"]
MODEL = config["model"]
# The run's files (results/<run>/, logs/<run>/) and the model's (resources/models/<name>/).
RUN_FILES = paths.RunFiles(RUN)
LOGS = RUN_FILES.logs
MODEL_FILES = paths.ModelFiles(MODEL["name"])
DATASET_DIR = settings.dataset_dir(config)
DATASET_ARCHIVE = paths.download_path(DATASET["url"]) if DATASET["kind"] == "download" else None
# Whether the workflow trains the model (on the generated dataset) rather than loading its weights.
MODEL_TRAINED = model_kind(MODEL["kind"]).trained
# Weights the workflow makes or fetches live in the model's folder; a local checkpoint is used where
# it is; torchvision fetches its own into TORCH_HOME.
if MODEL_TRAINED or MODEL["url"]:
    MODEL_WEIGHTS = [MODEL_FILES.weights]
elif MODEL["checkpoint"]:
    MODEL_WEIGHTS = [MODEL["checkpoint"]]
else:
    MODEL_WEIGHTS = []
# The side of the images the model is fed.
MODEL_INPUT_SIZE = settings.model_input_size(config)

# Class atlases and comparisons, by wildcard value (a file-name-safe slug): the classes they show, as
# configured (names or indices), one for a class atlas, two for a comparison.
CLASS_LAYER = config["class_atlas"]["layer"] or LAYERS[-1]
CLASS_ATLASES = {
    **{class_slug(str(spec)): [spec] for spec in config["class_atlas"]["classes"]},
    **{comparison_slug(pair): list(pair) for pair in config["class_atlas"]["comparisons"]},
}
# Every class they name: extraction attributes these whatever else it leaves out.
NAMED_CLASSES = [spec for specs in CLASS_ATLASES.values() for spec in specs]

# Patch attacks, by wildcard value (the comparison's slug): the comparisons they attack, [a, b] as configured.
ATTACKS = config["attacks"]
ATTACK_PAIRS = (
    {comparison_slug(pair): list(pair) for pair in (ATTACKS["pairs"] or config["class_atlas"]["comparisons"])}
    if ATTACKS["enabled"]
    else {}
)
ATTACK_SOURCE = settings.attack_source(config)
# Each attack rule's part of the section: a changed value reruns only the rules that use it.
ATTACK_PATCHES = {
    key: ATTACKS[key] for key in ("cells", "crops_per_cell", "crops_from_other_classes", "crop_size", "sizes")
}
ATTACK_BATCHES = {key: ATTACKS[key] for key in ("batch_size", "shards")}
ATTACK_TABLE = {key: ATTACKS[key] for key in ("sizes", "static")}


wildcard_constraints:
    layer="|".join(re.escape(layer) for layer in LAYERS),
    grid=r"\d+",
    shard=r"\d+",
    chunk=r"\d+",
    size=r"\d+",
    cls="|".join(re.escape(slug) for slug in CLASS_ATLASES) or "(?!)",
    pair="|".join(re.escape(slug) for slug in ATTACK_PAIRS) or "(?!)",


def images_dir():
    return settings.images_dir(config)


def dataset_input():
    return settings.dataset_input(config)


def image_selection():
    return settings.image_selection(config)


def render_settings(layer):
    """The render section resolved for one layer."""
    return layer_section(config, "render", layer)


def spectrum_input(layer):
    """The amplitude spectrum a layer's render jobs read (render.param maco), at its icon size."""
    render = render_settings(layer)
    return [RUN_FILES.spectrum(render["icon_size"])] if render["param"] == "maco" else []


def icon_chunks(wildcards):
    """The render jobs of one layer and grid, known once its cells are binned."""
    cells = checkpoints.bin_cells.get(layer=wildcards.layer, grid=wildcards.grid).output[0]
    render = render_settings(wildcards.layer)
    n = render_chunk_count(
        count_cells(cells),
        render["cells_per_job"],
        render["attempts"],
        render["batch_size"],
        wildcards.layer,
    )
    return expand(
        RUN_FILES.icon_chunk(wildcards.layer, wildcards.grid, "{chunk}"),
        chunk=range(n),
    )


def torch_resources(mem_mb, runtime):
    """Portable resources of a torch rule; gpu=1 only when the config asks for CUDA."""
    resources = {"mem_mb": mem_mb, "runtime": runtime}
    if config["device"] == "cuda":
        resources["gpu"] = 1
    return resources


def viewer_atlases():
    """The viewer's atlases: every layer's grids as zoom levels, then each class atlas."""
    layers = [
        {
            "id": layer,
            "title": f"layer {layer}",
            "levels": [[grid, RUN_FILES.cells(layer, grid), RUN_FILES.tiles(layer, grid)] for grid in GRIDS],
        }
        for layer in LAYERS
    ]
    grid = config["class_atlas"]["grid_size"]
    classes = [
        {
            "id": slug,
            "title": (f"class {shown[0]}" if len(shown) == 1 else f"{shown[1]} ← vs → {shown[0]}")
            + f" ({CLASS_LAYER})",
            "levels": [[grid, RUN_FILES.class_atlas(slug, "cells.h5"), RUN_FILES.class_atlas(slug, "tiles")]],
        }
        for slug, shown in CLASS_ATLASES.items()
    ]
    return layers + classes


def all_outputs():
    return [
        *expand(RUN_FILES.atlas("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        *expand(RUN_FILES.metrics("{layer}"), layer=LAYERS),
        *expand(RUN_FILES.layout("{layer}", "png"), layer=LAYERS),
        *[RUN_FILES.class_atlas(slug, "atlas.png") for slug in CLASS_ATLASES],
        *[RUN_FILES.attack(slug, "table.json") for slug in ATTACK_PAIRS],
        *([RUN_FILES.viewer_page] if config["viewer"]["enabled"] else []),
        RUN_FILES.manifest,
        RUN_FILES.provenance,
    ]


def kept_outputs():
    """Every file and folder the run keeps in its results folder (all but temporary files): what its
    manifest lists."""
    class_layers = [CLASS_LAYER] if CLASS_ATLASES else []
    per_class = ("layout.h5", "layout.png", "cells.h5", "icons.h5", "atlas.png", "tiles")
    return [
        RUN_FILES.numerics,
        RUN_FILES.model_card,
        *expand(RUN_FILES.activations("{layer}"), layer=LAYERS),
        *expand(RUN_FILES.layout("{layer}", "{ext}"), layer=LAYERS, ext=["h5", "png"]),
        *expand(RUN_FILES.cells("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        *expand(RUN_FILES.icons("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        *expand(RUN_FILES.atlas("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        *expand(RUN_FILES.tiles("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        *expand(RUN_FILES.metrics("{layer}"), layer=LAYERS),
        *[RUN_FILES.class_atlas(slug, name) for slug in CLASS_ATLASES for name in per_class],
        *[RUN_FILES.attack(slug, name) for slug in ATTACK_PAIRS for name in paths.ATTACK_FILES],
        *sorted({path for layer in LAYERS + class_layers for path in spectrum_input(layer)}),
        *([RUN_FILES.viewer_page, RUN_FILES.viewer_assets] if config["viewer"]["enabled"] else []),
    ]
