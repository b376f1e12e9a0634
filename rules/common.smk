import re

RUN = config["run"]
LAYERS = config["layers"]
GRIDS = config["grid"]["sizes"]
DATASET_DIR = f"resources/datasets/{config['dataset']['name']}"
MODEL_DIR = f"resources/models/{config['model']['name']}"
RESULTS = f"results/{RUN}"
LOGS = f"logs/{RUN}"


wildcard_constraints:
    layer="|".join(re.escape(layer) for layer in LAYERS),
    grid=r"\d+",


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
    ]
