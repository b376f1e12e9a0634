# The config's check and the names every rule file uses (the run's layers, grids, class atlases and
# attacks, its files from activation_atlas/workflow/paths.py) and the functions that resolve the config
# into each rule's params. Every rule's params hold exactly the settings its script passes to its
# stage, so a changed value reruns exactly the rules that use it.
import os
import re
import sys

from snakemake.io import is_flagged

from activation_atlas.workflow.config_check import ConfigError, check_config
from activation_atlas.formats.cells import count_cells
from activation_atlas.workflow.jobs import render_chunk_count
from activation_atlas.models.kinds import model_kind
from activation_atlas.workflow.environment import prepare_job_environment, sorted_keys
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


# Snakemake compares params as text: the order keys are written in a config file must not count as
# a change of settings.
config.update(sorted_keys(config))
# Set before any job starts, so that every job inherits it (on a cluster too: each job parses this file
# again).
prepare_job_environment(config["portable"])


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
MODEL_WEIGHTS = [weights] if (weights := settings.model_weights(config)) else []
# The side of the images the model is fed.
MODEL_INPUT_SIZE = settings.model_input_size(config)

# Class atlases and comparisons, by wildcard value (a file-name-safe slug): the classes they show, as
# configured (names or indices), one for a class atlas, two for a comparison.
CLASS_LAYER = config["class_atlas"]["layer"] or LAYERS[-1]
CLASS_ATLASES = settings.class_atlases(config)
# Every class they name: extraction attributes these whatever else it leaves out.
NAMED_CLASSES = settings.named_classes(config)

# Patch attacks, by wildcard value (the comparison's slug): the comparisons they attack, [a, b] as configured.
ATTACKS = config["attacks"]
ATTACK_PAIRS = settings.attack_pairs(config)
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


# What the run makes (workflow/paths.py lists its files).
RUN_CONTENTS = paths.RunContents(
    layers=LAYERS,
    grids=GRIDS,
    class_atlases=list(CLASS_ATLASES),
    attack_pairs=list(ATTACK_PAIRS),
    spectra=sorted(
        {path for layer in LAYERS + ([CLASS_LAYER] if CLASS_ATLASES else []) for path in spectrum_input(layer)}
    ),
    viewer=config["viewer"]["enabled"],
    dictionary_layers=config["dictionary"]["layers"],
)
