# Validation, the paths and names every rule file uses, and the functions that resolve the config
# into each rule's params. Every rule's params hold exactly the settings its script passes to its
# stage, so a changed value reruns exactly the rules that use it.
import os
import re
import sys

from snakemake.io import is_flagged

from activation_atlas.class_atlas import class_slug, comparison_slug
from activation_atlas.config_check import ConfigError, check_config
from activation_atlas.formats.cells import count_cells
from activation_atlas.jobs import render_chunk_count
from activation_atlas.models.kinds import model_kind
from activation_atlas.provenance import PORTABLE_ENVIRONMENT, workflow_facts
from activation_atlas.run_lock import clear_stale_lock
from activation_atlas import settings
from activation_atlas.settings import layer_section, layout_threads, umap_settings


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
os.environ.setdefault("TORCH_HOME", os.path.abspath("resources/torch_home"))


RUN = config["run"]
LAYERS = config["layers"]
GRIDS = config["grid"]["sizes"]
DATASET = config["dataset"]
MODEL = config["model"]
RESULTS = f"results/{RUN}"
LOGS = f"logs/{RUN}"
DATASET_DIR = settings.dataset_dir(config)
DATASET_ARCHIVE = (
    f"resources/downloads/{os.path.basename(DATASET['url'].split('?')[0])}"
    if DATASET["kind"] == "download"
    else None
)
MODEL_DIR = f"resources/models/{MODEL['name']}"
# Whether the workflow trains the model (on the generated dataset) rather than loading its weights.
MODEL_TRAINED = model_kind(MODEL["kind"]).trained
MODEL_CARD = f"{MODEL_DIR}/model.json"
# What training a model the workflow trains measured: its classes, accuracies and losses.
MODEL_TRAINING = f"{MODEL_DIR}/training.json"
# How the run's numbers are computed (portable or native kernels): an input of the first jobs that
# compute with floats, so that switching `portable` reruns them and everything after them.
NUMERICS = f"{RESULTS}/numerics.json"
# The model card with the model's accuracy on this run's images.
RUN_MODEL_CARD = f"{RESULTS}/model.json"
# Weights the workflow makes or fetches live in MODEL_DIR; a local checkpoint is used where it is;
# torchvision fetches its own into TORCH_HOME.
if MODEL_TRAINED or MODEL["url"]:
    MODEL_WEIGHTS = [f"{MODEL_DIR}/weights.pt"]
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
CLASS_DIR = f"{RESULTS}/class_atlas/{{cls}}"


wildcard_constraints:
    layer="|".join(re.escape(layer) for layer in LAYERS),
    grid=r"\d+",
    shard=r"\d+",
    chunk=r"\d+",
    size=r"\d+",
    cls="|".join(re.escape(slug) for slug in CLASS_ATLASES) or "(?!)",


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
    return [f"{RESULTS}/spectrum/{render['icon_size']}px.h5"] if render["param"] == "maco" else []


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
        f"{RESULTS}/icons/{wildcards.layer}/grid{wildcards.grid}/chunk{{chunk}}.h5",
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
            "levels": [
                [grid, f"{RESULTS}/cells/{layer}/grid{grid}.h5", f"{RESULTS}/atlas/{layer}/tiles/grid{grid}"]
                for grid in GRIDS
            ],
        }
        for layer in LAYERS
    ]
    grid = config["class_atlas"]["grid_size"]
    classes = [
        {
            "id": slug,
            "title": (f"class {shown[0]}" if len(shown) == 1 else f"{shown[1]} ← vs → {shown[0]}")
            + f" ({CLASS_LAYER})",
            "levels": [[grid, f"{RESULTS}/class_atlas/{slug}/cells.h5", f"{RESULTS}/class_atlas/{slug}/tiles"]],
        }
        for slug, shown in CLASS_ATLASES.items()
    ]
    return layers + classes


def all_outputs():
    return [
        *expand(f"{RESULTS}/atlas/{{layer}}/grid{{grid}}.png", layer=LAYERS, grid=GRIDS),
        *expand(f"{RESULTS}/atlas/{{layer}}/metrics.json", layer=LAYERS),
        *expand(f"{RESULTS}/layout/{{layer}}.png", layer=LAYERS),
        *[f"{RESULTS}/class_atlas/{slug}/atlas.png" for slug in CLASS_ATLASES],
        *([f"{RESULTS}/viewer.html"] if config["viewer"]["enabled"] else []),
        f"{RESULTS}/MANIFEST.json",
        f"{LOGS}/provenance.json",
    ]


def kept_outputs():
    """Every file and folder the run keeps in its results folder (all but temporary files): what its
    manifest lists."""
    class_layers = [CLASS_LAYER] if CLASS_ATLASES else []
    per_class = ("layout.h5", "layout.png", "cells.h5", "icons.h5", "atlas.png", "tiles")
    return [
        NUMERICS,
        RUN_MODEL_CARD,
        *expand(f"{RESULTS}/activations/{{layer}}.h5", layer=LAYERS),
        *expand(f"{RESULTS}/layout/{{layer}}.{{ext}}", layer=LAYERS, ext=["h5", "png"]),
        *expand(f"{RESULTS}/{{kind}}/{{layer}}/grid{{grid}}.h5", kind=["cells", "icons"], layer=LAYERS, grid=GRIDS),
        *expand(f"{RESULTS}/atlas/{{layer}}/grid{{grid}}.png", layer=LAYERS, grid=GRIDS),
        *expand(f"{RESULTS}/atlas/{{layer}}/tiles/grid{{grid}}", layer=LAYERS, grid=GRIDS),
        *expand(f"{RESULTS}/atlas/{{layer}}/metrics.json", layer=LAYERS),
        *[f"{RESULTS}/class_atlas/{slug}/{name}" for slug in CLASS_ATLASES for name in per_class],
        *sorted({path for layer in LAYERS + class_layers for path in spectrum_input(layer)}),
        *([f"{RESULTS}/viewer.html", f"{RESULTS}/viewer"] if config["viewer"]["enabled"] else []),
    ]
