import copy
import re
import subprocess
import sys

import pytest

from activation_atlas.workflow.config_check import ConfigError
from tools.runs import REPO, SCHEMA, copy_workflow, load_config, validated


def test_defaults_are_filled_into_every_section():
    config = validated({})
    assert config["run"] == "demo"
    assert config["render"]["transforms"]["jitters"] == [1, 1, 2, 2]
    assert config["grid"]["min_count"] == 5
    assert config["layout"]["per_layer"] == {}


@pytest.mark.parametrize(
    "name",
    [
        "config.yaml",
        "config/ci.yaml",
        "config/inceptionv1-imagenette.yaml",
        "config/cifar10-resnet32.yaml",
        "config/demo-vit.yaml",
        "config/ci-vit.yaml",
    ],
)
def test_shipped_configs_are_valid(name, monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(name)
    assert config["layers"]


@pytest.mark.parametrize("name", ["config/inceptionv1-imagenet.yaml", "config/efficientnet-lite0-imagenet.yaml"])
def test_the_imagenet_configs_are_valid_once_their_folder_is_set(tmp_path, name):
    """They ship with a placeholder for the reader's own ImageNet folder, which the check names."""
    import yaml

    config = yaml.safe_load((REPO / name).read_text())
    with pytest.raises(ConfigError, match="^dataset.path = '/path/to/imagenet/train': no such folder$"):
        validated(config)
    config["dataset"]["path"] = str(tmp_path)
    assert validated(config)["layers"]


def test_default_config_has_at_least_three_layers_and_several_grids():
    config = load_config("config.yaml")
    assert len(config["layers"]) >= 3
    assert len(config["grid"]["sizes"]) >= 2


def merged(base: dict, change: dict) -> dict:
    """base with change written over it, section by section."""
    config = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = merged(config[key], value)
        else:
            config[key] = value
    return config


def rejection(change: dict, replace: bool = False) -> str:
    """The ConfigError of config/ci.yaml with change written over it (replace: its sections replace ci.yaml's)."""
    import yaml

    base = yaml.safe_load((REPO / "config/ci.yaml").read_text())
    config = {**base, **change} if replace else merged(base, change)
    with pytest.raises(ConfigError) as caught:
        validated(config)
    return str(caught.value)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"run": ".."}, "run"),
        ({"run": "."}, "run"),
        ({"run": "a/b"}, "run"),
        ({"run": ".hidden"}, "run"),
        ({"dataset": {"name": ".."}}, "dataset.name"),
        ({"model": {"name": "../models"}}, "model.name"),
        ({"layers": ["conv1", ".."]}, "layers[1]"),
    ],
)
def test_names_that_become_paths_are_one_folder_name(change, key):
    assert rejection(change) == (
        f"{key} = {change_value(change)!r}: must be one folder name: letters, digits, "
        "'_', '-' and '.', not starting with '.'"
    )


def change_value(change: dict):
    value = next(iter(change.values()))
    while isinstance(value, dict):
        value = next(iter(value.values()))
    return value[-1] if isinstance(value, list) else value


@pytest.mark.parametrize(
    "change, message",
    [
        ({"layres": ["conv2"]}, "unknown key layres at the top level; valid keys: run, seed, "),
        ({"layout": {"n_neigbors": 5}}, "unknown key n_neigbors in layout; valid keys: n_neighbors, min_dist, "),
        ({"device": "tpu"}, "device = 'tpu': must be one of 'auto', 'cpu', 'cuda'"),
        ({"grid": {"sizes": [4, "x"]}}, "grid.sizes[1] = 'x': must be an integer"),
        ({"seed": 2**70}, f"seed = {2**70}: must be at most 4294967295"),
        ({"extract": {"shards": 1000000}}, "extract.shards = 1000000: must be at most 4096"),
        ({"layout": {"metric": "nonsense"}}, "layout.metric = 'nonsense': must be one of 'cosine', "),
        (
            {
                "model": {
                    "kind": "torchvision",
                    "name": "vit",
                    "architecture": "vit_b_16",
                    "layer_grids": {"encoder.ln": "tokens(1)"},
                }
            },
            "model.layer_grids.encoder.ln = 'tokens(1)': ",
        ),
        (
            {"model": {"kwargs_from_checkpoint": 3}},
            "model.kwargs_from_checkpoint = 3: must be true or false or a string",
        ),
        ({"model": {"kwargs_from_checkpoint": ""}}, "model.kwargs_from_checkpoint = '': '' should be non-empty"),
        ({"render": {"stop": {"window": 8}}}, "render.stop.min_gain is required"),
        (
            {"render": {"stop": {"window": 8, "min_gain": 0.01, "prune_margin": -1}}},
            "render.stop.prune_margin = -1: must be at least 0",
        ),
    ],
)
def test_a_schema_violation_is_one_line_naming_key_value_and_what_is_valid(change, message):
    line = rejection(change)
    assert line.startswith(message), line
    assert "\n" not in line and len(line) < 400


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"model": {"kind": "torchvision", "name": "tv"}},
            "model.architecture is required when model.kind is 'torchvision'",
        ),
        ({"model": {"kind": "user", "name": "mine"}}, "model.factory is required when model.kind is 'user'"),
        ({"dataset": {"kind": "image_folder"}}, "dataset.path is required when dataset.kind is 'image_folder'"),
        ({"dataset": {"kind": "download"}}, "dataset.url is required when dataset.kind is 'download'"),
    ],
)
def test_a_key_the_kind_needs_is_said_to_be_required(section, message):
    assert rejection(section, replace=True) == message


def test_a_layer_grid_names_a_layer_of_the_run():
    vit = {
        "model": {
            "kind": "torchvision",
            "name": "vit",
            "architecture": "vit_b_16",
            "layer_grids": {"encoder.ln": "tokens(prefix=1)"},
        },
        "layers": ["encoder.layers.encoder_layer_1"],
        "layout": {},
        "render": {},
    }
    assert rejection(vit, replace=True) == (
        "model.layer_grids.encoder.ln: 'encoder.ln' is not one of the run's "
        "layers (encoder.layers.encoder_layer_1): add it to layers or remove "
        "the override"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"layers": ["conv1", "conv9"]},
            "layers[1] = 'conv9': demo_cnn has no such layer; valid: conv1, conv2, conv3, conv4",
        ),
        (
            {"render": {"per_layer": {"conv4": {"steps": 3}}}},
            "render.per_layer.conv4: 'conv4' is not one of the run's layers (conv1, conv2, conv3)",
        ),
        (
            {"layout": {"per_layer": {"conv9": {"metric": "cosine"}}}},
            "layout.per_layer.conv9: 'conv9' is not one of the run's layers",
        ),
        ({"class_atlas": {"layer": "conv4"}}, "class_atlas.layer = 'conv4': not one of the run's layers"),
        (
            {"class_atlas": {"classes": ["red_checks_dsic"]}},
            "class_atlas.classes[0] = 'red_checks_dsic': unknown class 'red_checks_dsic'",
        ),
        (
            {"class_atlas": {"comparisons": [["red_checks_disc", 10]]}},
            "class_atlas.comparisons[0][1] = 10: class index 10 is out of range: the model has 10 classes",
        ),
        (
            {"class_atlas": {"comparisons": [[3, 3]]}},
            "class_atlas.comparisons[0] = [3, 3]: compares a class with itself",
        ),
        ({"extract": {"attribution": False}}, "class_atlas.classes and class_atlas.comparisons need attributions"),
        (
            {"attacks": {"pairs": [["red_checks_disc", "green_stripes_ring"]]}},
            'attacks.pairs[0] = ["red_checks_disc", "green_stripes_ring"]: not one of class_atlas.comparisons '
            '([["red_checks_disc", "red_dots_square"]]); add it there or attack one of those',
        ),
        (
            {"attacks": {"static": {"size": 0.3}}},
            "attacks.static.size = 0.3: must be one of attacks.sizes ([0.25, 0.5])",
        ),
        (
            {"class_atlas": {"comparisons": []}},
            "attacks.enabled: the attacks take their patches from class comparisons, "
            "and class_atlas.comparisons is empty",
        ),
        (
            {"dictionary": {"layers": ["conv4"]}},
            "dictionary.layers[0] = 'conv4': not one of the run's layers (conv1, conv2, conv3)",
        ),
        (
            {"dictionary": {"per_layer": {"conv2": {"top_k": 2}}}},
            "dictionary.per_layer.conv2: 'conv2' learns no dictionary (dictionary.layers: conv3): add it there "
            "or remove the override",
        ),
        (
            {"dictionary": {"atoms": 4}},
            "dictionary.top_k = 4 for conv3: must be below its 4 atoms (dictionary.atoms); lower top_k or raise atoms",
        ),
        (
            {"render": {"transforms": {"scale_exponents": [39, 20]}}},
            "render.transforms.scale_exponents = [39, 20]: must be [low, high] with low ≤ high",
        ),
        (
            {"extract": {"shards": 401}},
            "extract.shards = 401: more extraction jobs than the run's 400 images; valid: 1 to 400",
        ),
        (
            {"grid": {"min_count": 800}},
            "grid.min_count = 800: no cell can hold more than that, the run has 800 "
            "activations per layer; valid: 0 to 799",
        ),
        (
            {"dataset": {"subdir": "train"}},
            "dataset.subdir applies only when dataset.kind is image_folder or download (dataset.kind is generated)",
        ),
        (
            {"model": {"architecture": "resnet18"}},
            "model.architecture applies only when model.kind is timm or torchvision (model.kind is demo_cnn)",
        ),
        (
            {"model": {"url": "http://127.0.0.1/w.pt"}},
            "model.url applies only when model.kind is inceptionv1 or timm or user (model.kind is demo_cnn)",
        ),
        (
            {"model": {"layer_grids": {"conv2": "channels_last"}}},
            "model.layer_grids applies only when model.kind is demo_vit or module or timm or torchvision or user "
            "(model.kind is demo_cnn)",
        ),
        (
            {"model": {"vit": {"depth": 2}}},
            "model.vit applies only when model.kind is demo_vit (model.kind is demo_cnn)",
        ),
        (
            {"render": {"stop": {"window": 24, "min_gain": 0.01}}},
            "render.stop.window = 24: must be less than the steps of layer conv1 (24); an attempt is checked at the "
            "end of each window",
        ),
        (
            {"render": {"stop": {"window": 8, "min_gain": 0.0, "prune_at": 12}}},
            "render.stop.prune_at = 12: must be a multiple of window (8) and less than the steps of layer conv1 (24)",
        ),
        (
            {"render": {"per_layer": {"conv2": {"stop": {"window": 4, "min_gain": 0.0, "prune_at": 24}}}}},
            "render.per_layer.conv2.stop.prune_at = 24: must be a multiple of window (4) and less than the steps "
            "of layer conv2 (24)",
        ),
        (
            {"render": {"attempts": 3, "stop": {"window": 4, "min_gain": 0.0, "prune_at": 8}}},
            "render.stop.prune_at is set and render.batch_size of layer conv1 (8) is not a multiple of its "
            "attempts (3): an icon's attempts are compared in one batch",
        ),
    ],
)
def test_what_the_schema_cannot_say_is_checked_before_any_job(change, message):
    line = rejection(change)
    assert line.startswith(message), line
    assert "\n" not in line


@pytest.mark.parametrize(
    "model, message",
    [
        (
            {},
            "model.input_size is not set: demo_vit needs it (the side of the images its position embeddings "
            "are made for)",
        ),
        (
            {"input_size": 30},
            "model.input_size = 30 is not a multiple of model.vit.patch_size = 8: the patches must tile the image",
        ),
        ({"input_size": 32, "vit": {"width": 30}}, "model.vit.width = 30 is not a multiple of model.vit.heads = 4"),
        (
            {"input_size": 32},
            "layers[0] = 'conv1': demo_vit has no such layer; valid: conv_proj, encoder, encoder.dropout, "
            "encoder.layers, encoder.layers.encoder_layer_0, encoder.layers.encoder_layer_0.ln_1, ",
        ),
    ],
)
def test_a_demo_vit_needs_an_input_size_its_patches_tile_and_layers_it_has(model, message):
    line = rejection({"model": {"kind": "demo_vit", "name": "vit", **model}}, replace=True)
    assert line.startswith(message), line


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"dataset": {"kind": "image_folder", "path": "no/such/folder"}},
            "dataset.path = 'no/such/folder': no such folder",
        ),
        (
            {"model": {"kind": "user", "name": "mine", "factory": "m:f", "checkpoint": "no/such.pt"}},
            "model.checkpoint = 'no/such.pt': no such file",
        ),
        (
            {"model": {"kind": "user", "name": "mine", "factory": "m:f", "python_path": ["examples", "nowhere"]}},
            "model.python_path[1] = 'nowhere': no such folder",
        ),
        (
            {"attacks": {"enabled": True, "images": "no/such/folder"}},
            "attacks.images = 'no/such/folder': no such folder",
        ),
    ],
)
def test_files_and_folders_the_config_names_must_exist(section, message, monkeypatch):
    monkeypatch.chdir(REPO)
    assert rejection(section, replace=True) == message


def test_a_model_the_workflow_trains_needs_the_generated_dataset(monkeypatch):
    monkeypatch.chdir(REPO)
    assert rejection({"dataset": {"kind": "image_folder", "path": "examples"}}, replace=True) == (
        "model.kind = demo_cnn is trained by the workflow on the generated dataset, and dataset.kind is image_folder: "
        "set dataset.kind: generated, or choose a model kind with weights (inceptionv1, timm, torchvision, user)"
    )


def test_the_limits_follow_the_config_they_are_checked_in():
    """400 images × 2 positions in ci.yaml: shards up to 400 and min_count up to 799 are accepted."""
    import yaml

    config = merged(
        yaml.safe_load((REPO / "config/ci.yaml").read_text()), {"extract": {"shards": 400}, "grid": {"min_count": 799}}
    )
    assert validated(config)["extract"]["shards"] == 400


def snakemake_dry_run(workdir, *args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "all", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.workflow
def test_snakemake_stops_on_a_bad_value_with_one_line_and_touches_nothing(tmp_path):
    workdir = tmp_path / "workflow"
    copy_workflow(workdir)
    (workdir / "resources" / "models").mkdir(parents=True)
    (workdir / "resources" / "models" / "kept.pt").write_bytes(b"weights")
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*") if ".snakemake" not in p.parts)
    for args, message in [
        (["--configfile", "config/ci.yaml", "--config", "dataset={name: ..}"], "config: dataset.name = '..': "),
        (["--configfile", "config/ci.yaml", "--config", "bogus=1"], "config: unknown key bogus at the top level"),
        (["--configfile", "config/ci.yaml", "--config", "layers=[conv1, conv9]"], "config: layers[1] = 'conv9'"),
    ]:
        result = snakemake_dry_run(workdir, *args)
        assert result.returncode == 1
        # Snakemake's own first line names the profile it applies; the error is the only other.
        lines = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith("Using workflow specific profile")
        ]
        assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    after = sorted(p.relative_to(workdir) for p in workdir.rglob("*") if ".snakemake" not in p.parts)
    assert after == before


@pytest.mark.workflow
def test_layout_jobs_ask_for_the_threads_their_neighbour_search_is_split_into(tmp_path):
    workdir = tmp_path / "workflow"
    copy_workflow(workdir)

    def layout_threads(*config):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--dry-run",
                "--cores",
                "4",
                "--configfile",
                "config/ci.yaml",
                "--config",
                "threads=3",
                *config,
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        jobs = [job for job in result.stdout.split("\n\n") if "rule layout:" in job or "rule class_cells:" in job]
        return sorted(int(re.search(r"threads: (\d+)", job).group(1)) if "threads:" in job else 1 for job in jobs)

    assert layout_threads() == [1] * 5  # 3 layers, 2 class atlases
    assert layout_threads("layout={backend: umap-learn-threaded-knn}") == [3] * 5


def test_the_schema_admits_no_name_pattern_but_the_path_component_one():
    """Every name in the schema that becomes a path uses the one checked pattern (the others: a sha256
    and a layer grid, which name no path)."""
    from activation_atlas.models.grids import GRID_SPEC
    from activation_atlas.workflow.config_schema import PATH_COMPONENT, load_schema

    text = (REPO / "schemas" / "config.schema.yaml").read_text()
    grid = load_schema(SCHEMA)["properties"]["model"]["properties"]["layer_grids"]["additionalProperties"]["pattern"]
    patterns = {pattern.replace("\\\\", "\\") for pattern in re.findall(r'pattern: "([^"]+)"', text)}
    assert patterns == {PATH_COMPONENT, "^[0-9a-fA-F]{64}$", grid}
    for spec in [
        "maps",
        "channels_last",
        "vector",
        "tokens(prefix=1)",
        "tokens(prefix=12)",
        "tokens(1)",
        "../x",
        "maps ",
        "tokens(prefix=-1)",
    ]:
        assert bool(re.match(grid, spec)) == bool(GRID_SPEC.match(spec)), spec
    for name in ["..", ".", ".x", "a/b", "a\\b", ""]:
        assert not re.match(PATH_COMPONENT, name)
    for name in ["demo", "layer3.0.conv1", "mixed4c_3x3", "shapes64", "x-1"]:
        assert re.match(PATH_COMPONENT, name)
