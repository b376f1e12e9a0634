"""The model kinds are a registry, one module each (activation_atlas/models/kinds): the schema names the
same kinds, the config check and the loader read each kind's declarations, nothing of it imports
torch, and a new kind is one module plus its name in the schema's enum."""

import json
import shutil
import subprocess
import sys
import textwrap

import yaml

from activation_atlas.models.kinds import KINDS, kinds_taking
from tools.runs import REPO, SCHEMA


def test_the_schema_offers_exactly_the_registered_kinds():
    enum = yaml.safe_load(SCHEMA.read_text())["properties"]["model"]["properties"]["kind"]["enum"]
    assert sorted(enum) == sorted(KINDS)


def test_the_config_check_reads_the_registry_without_importing_torch():
    script = (
        "import sys; from activation_atlas.workflow.config_check import check_config; "
        "from activation_atlas.models.kinds import KINDS; "
        "from activation_atlas.models.labels import logit_names; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_keys_only_some_kinds_take_are_refused_for_the_others_by_the_kinds_declarations():
    assert kinds_taking("channels") == ["demo_cnn"]
    assert kinds_taking("train") == [name for name, kind in KINDS.items() if kind.trained] == ["demo_cnn", "demo_vit"]
    assert kinds_taking("name") == []  # every kind takes it


TINY_KIND = textwrap.dedent('''
    """tiny: a two-layer network that takes the config's kwargs, for the test that a kind is one module."""
    from activation_atlas.models.kinds import ModelKind


    def build(model_cfg, num_classes):
        from torch import nn

        width = model_cfg["kwargs"]["width"]
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, num_classes or 2))


    KIND = ModelKind(name="tiny", build=build, keys=("kwargs",),
                     normalisation=lambda model_cfg, model: {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)},
                     shipped_labels=lambda model_cfg: ["left", "right"])
''')

USE_TINY = textwrap.dedent("""
    import copy, json
    import torch
    from activation_atlas.workflow.config_check import check_config
    from activation_atlas.workflow.config_schema import ConfigError
    from activation_atlas.models.labels import logit_names
    from activation_atlas.models.capture import layer_names
    from activation_atlas.models.loading import load_model

    given = {"model": {"kind": "tiny", "name": "tiny", "kwargs": {"width": 4}, "input_size": 16},
             "dataset": {"kind": "image_folder", "path": "images"}, "layers": ["0"]}
    config = copy.deepcopy(given)
    check_config(config, "schemas/config.schema.yaml")
    model = load_model(config["model"], None)
    seen = []
    model[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        logits = model(x)
    try:
        check_config({**given, "model": {**given["model"], "architecture": "resnet18"}}, "schemas/config.schema.yaml")
        refused = None
    except ConfigError as error:
        refused = str(error)
    print(json.dumps({"layers": layer_names(model), "labels": logit_names(config["model"], 2, [], print),
                      "normalised": bool(torch.allclose(seen[0], (x - 0.5) / 0.25)), "logits": list(logits.shape),
                      "refused": refused}))
""")


def test_a_new_kind_is_one_module_and_its_name_in_the_schemas_enum(tmp_path):
    shutil.copytree(
        REPO / "activation_atlas", tmp_path / "activation_atlas", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "activation_atlas" / "models" / "kinds" / "tiny.py").write_text(TINY_KIND)
    schema = SCHEMA.read_text()
    enum = "enum: [demo_cnn, demo_vit, inceptionv1, torchvision, timm, user, module]"
    assert enum in schema
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "config.schema.yaml").write_text(schema.replace(enum, enum[:-1] + ", tiny]"))
    (tmp_path / "images" / "a").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", USE_TINY], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["layers"] == ["0", "1", "2", "3", "4"]
    assert result["labels"] == ["left", "right"]
    assert result["logits"] == [1, 2] and result["normalised"]
    assert result["refused"] == (
        "model.architecture applies only when model.kind is timm or torchvision (model.kind is tiny): remove it"
    )
