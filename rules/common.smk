import os
import re

RUN = config["run"]
LAYERS = config["layers"]
GRIDS = config["grid"]["sizes"]
DATASET = config["dataset"]
MODEL = config["model"]
DATASET_DIR = f"resources/datasets/{DATASET['name']}"
DATASET_ARCHIVE = (
    f"resources/downloads/{os.path.basename(DATASET['url'].split('?')[0])}"
    if DATASET["kind"] == "download"
    else None
)
MODEL_DIR = f"resources/models/{MODEL['name']}"
MODEL_CARD = f"{MODEL_DIR}/model.json"
# Weights the workflow makes or fetches live in MODEL_DIR; a local checkpoint is used where it is;
# torchvision fetches its own into TORCH_HOME.
if MODEL["kind"] == "demo_cnn" or MODEL["url"]:
    MODEL_WEIGHTS = [f"{MODEL_DIR}/weights.pt"]
elif MODEL["checkpoint"]:
    MODEL_WEIGHTS = [MODEL["checkpoint"]]
else:
    MODEL_WEIGHTS = []


def images_dir():
    """The folder of images activations are extracted from."""
    if DATASET["kind"] == "generated":
        return f"{DATASET_DIR}/{config['extract']['split']}"
    root = DATASET["path"] if DATASET["kind"] == "image_folder" else DATASET_DIR
    return os.path.join(root, DATASET["subdir"]) if DATASET["subdir"] else root


def dataset_input():
    return DATASET["path"] if DATASET["kind"] == "image_folder" else DATASET_DIR

RESULTS = f"results/{RUN}"
LOGS = f"logs/{RUN}"


wildcard_constraints:
    layer="|".join(re.escape(layer) for layer in LAYERS),
    grid=r"\d+",
    shard=r"\d+",
    chunk=r"\d+",


def one_of(names):
    """A wildcard constraint matching exactly these names (none: matching nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def icon_chunks(wildcards):
    """The render jobs of one layer and grid, known once its cells are binned."""
    cells = checkpoints.bin_cells.get(layer=wildcards.layer, grid=wildcards.grid).output[0]
    n = render_chunks(cells_count(cells), config, wildcards.layer)
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


def all_outputs():
    return [
        *expand(f"{RESULTS}/atlas/{{layer}}/grid{{grid}}.png", layer=LAYERS, grid=GRIDS),
        *expand(f"{RESULTS}/atlas/{{layer}}/metrics.json", layer=LAYERS),
        *expand(f"{RESULTS}/layout/{{layer}}.png", layer=LAYERS),
        *[
            f"{RESULTS}/class_atlas/{class_slug(str(spec))}/atlas.png"
            for spec in config["class_atlas"]["classes"]
        ],
        *[
            f"{RESULTS}/class_atlas/{comparison_slug(pair)}/atlas.png"
            for pair in config["class_atlas"]["comparisons"]
        ],
        *([f"{RESULTS}/viewer.html"] if config["viewer"]["enabled"] else []),
    ]
