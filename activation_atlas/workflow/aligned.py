"""Aligned atlases: two layers, of two runs' networks or of one, laid out on one map.

An aligned config (config/aligned-demo.yaml) names two members, each a run config and one of its
layers. Both members read the same images at the same places (extract.shared_positions), so row i of
each member's activations describes one patch of one image. The joint layout is a UMAP of the rows
with each member's vector scaled to unit length and the two concatenated: with the cosine metric, the
distance of two rows is the mean of the members' cosine distances, so neither network outweighs the
other whatever its width or scale. The grid is binned once; each member's cells hold its own mean
vectors and are rendered by its own model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from activation_atlas.workflow.config_check import check_config
from activation_atlas.workflow.config_schema import ConfigError, check_schema, load_schema, shown
from activation_atlas.workflow.paths import AlignedFiles, ModelFiles, RunFiles
from activation_atlas.workflow.settings import image_selection

# The sections of an aligned config that mean what they mean in a run's config (the run schema's).
SHARED_SECTIONS = ("layout", "grid", "montage", "viewer")


@dataclass(frozen=True)
class Member:
    run: str  # the member run's name: its files live in results/<run>/
    layer: str
    title: str  # how the atlas names it
    config: dict  # the member run's config, checked, defaults filled in
    given: dict  # the same as its file has it (the member's workflow checks it again)

    @property
    def card(self) -> str:
        return ModelFiles(self.config["model"]["name"]).card

    @property
    def activations(self) -> str:
        """Its layer's activations at the shared positions (its run's rule extract_shared)."""
        return RunFiles(self.run).shared_activations(self.layer)


def member_named(members: list[Member], run: str, layer: str) -> Member:
    return next(member for member in members if (member.run, member.layer) == (run, layer))


def aligned_outputs(files: AlignedFiles, grids: list[int], viewer: bool) -> list[str]:
    """What an aligned run makes: the side-by-side atlases, the joint layout's plot, the figures, the
    viewer and the manifest."""
    return [
        *(files.atlas(grid) for grid in grids),
        files.layout("png"),
        files.metrics,
        *([files.viewer_page] if viewer else []),
        files.manifest,
    ]


def aligned_kept_outputs(files: AlignedFiles, members: list[Member], grids: list[int], viewer: bool) -> list[str]:
    """Every file and folder an aligned run keeps in its results folder: what its manifest lists."""
    per_member = [
        path
        for member in members
        for grid in grids
        for path in (
            files.member_cells(member.run, member.layer, grid),
            files.member_icons(member.run, member.layer, grid),
            files.member_atlas(member.run, member.layer, grid),
            files.member_tiles(member.run, member.layer, grid),
        )
    ]
    return [
        files.layout(),
        files.layout("png"),
        *(files.atlas(grid) for grid in grids),
        files.metrics,
        *per_member,
        *([files.viewer_page, files.viewer_assets] if viewer else []),
    ]


def aligned_schema(aligned_schema_path: Path | str, run_schema_path: Path | str) -> dict:
    """The aligned config's schema: its own keys, and the shared sections as a run config has them
    (less their per-layer overrides: an aligned atlas has one layout)."""
    schema = copy.deepcopy(load_schema(aligned_schema_path))
    run_properties = load_schema(run_schema_path)["properties"]
    for section in SHARED_SECTIONS:
        shared = copy.deepcopy(run_properties[section])
        shared["properties"].pop("per_layer", None)
        schema["properties"][section] = shared
    return schema


def load_member_config(index: int, path: str, run_schema_path: Path | str) -> tuple[dict, dict]:
    """A member's config as its file has it, and checked with its defaults filled in."""
    try:
        given = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"aligned[{index}].config = {shown(path)}: cannot be read: {error}") from None
    if not isinstance(given, dict):
        raise ConfigError(f"aligned[{index}].config = {shown(path)}: not a mapping of config keys")
    config = copy.deepcopy(given)
    try:
        check_config(config, run_schema_path)
    except ConfigError as error:
        raise ConfigError(f"aligned[{index}].config = {shown(path)}: {error}") from None
    return given, config


def check_aligned_config(config: dict, schemas_dir: Path | str) -> list[Member]:
    """Fill in the aligned config's defaults and check it and its members' configs; its members.
    Every problem is one line naming the key (ConfigError)."""
    schemas_dir = Path(schemas_dir)
    run_schema = schemas_dir / "config.schema.yaml"
    check_schema(config, aligned_schema(schemas_dir / "aligned.schema.yaml", run_schema))
    members = []
    for index, entry in enumerate(config["aligned"]):
        given, member_config = load_member_config(index, entry["config"], run_schema)
        if entry["layer"] not in member_config["layers"]:
            raise ConfigError(
                f"aligned[{index}].layer = {shown(entry['layer'])}: not one of the layers of "
                f"{entry['config']} ({', '.join(member_config['layers'])})"
            )
        if member_config["run"] == config["run"]:
            raise ConfigError(
                f"aligned[{index}].config = {shown(entry['config'])}: its run has the aligned "
                f"run's name, {config['run']}: rename one"
            )
        title = entry.get("title") or f"{member_config['model']['name']} {entry['layer']}"
        members.append(Member(member_config["run"], entry["layer"], title, member_config, given))
    check_members_align(members, config)
    return members


def check_members_align(members: list[Member], config: dict) -> None:
    """The members read the same images, in the same order, at the same places."""
    first, second = members
    if (first.run, first.layer) == (second.run, second.layer):
        raise ConfigError(f"aligned[1] repeats aligned[0] ({first.run}, layer {first.layer}): align two layers")
    facts = {
        "seed": lambda c: c["seed"],
        "extract.positions_per_image": lambda c: c["extract"]["positions_per_image"],
        "the images (dataset and extract.split)": image_selection,
    }
    for what, fact in facts.items():
        if fact(first.config) != fact(second.config):
            raise ConfigError(
                f"aligned: the runs {first.run} and {second.run} differ in {what} "
                f"({shown(fact(first.config))} and {shown(fact(second.config))}): an aligned atlas "
                "needs both to read the same images at the same places"
            )
    if (
        first.config["model"]["name"] == second.config["model"]["name"]
        and first.run != second.run
        and first.config["model"] != second.config["model"]
    ):
        raise ConfigError(
            f"aligned: the runs {first.run} and {second.run} name different models "
            f"{first.config['model']['name']}: give each model its own model.name"
        )
