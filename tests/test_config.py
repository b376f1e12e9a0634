import pytest
from snakemake.exceptions import WorkflowError

from conftest import load_config, validated


def test_defaults_are_filled_into_every_section():
    config = validated({})
    assert config["run"] == "demo"
    assert config["render"]["transforms"]["jitters"] == [1, 1, 2, 2]
    assert config["grid"]["min_count"] == 5
    assert config["layout"]["per_layer"] == {}


def test_unknown_key_is_rejected_with_its_name():
    with pytest.raises(WorkflowError, match="'n_neigbors' was unexpected"):
        validated({"layout": {"n_neigbors": 5}})


def test_unknown_top_level_key_is_rejected_with_its_name():
    with pytest.raises(WorkflowError, match="'layres' was unexpected"):
        validated({"layres": ["conv2"]})


def test_invalid_value_names_the_valid_choices():
    with pytest.raises(WorkflowError, match="'tpu' is not one of \\['auto', 'cpu', 'cuda'\\]"):
        validated({"device": "tpu"})


@pytest.mark.parametrize("name", ["config.yaml", "config/ci.yaml", "config/inceptionv1-imagenet.yaml",
                                  "config/inceptionv1-imagenette.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(name)
    assert config["layers"]


def test_default_config_has_at_least_three_layers_and_several_grids():
    config = load_config("config.yaml")
    assert len(config["layers"]) >= 3
    assert len(config["grid"]["sizes"]) >= 2
