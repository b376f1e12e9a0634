# An aligned atlas (activation_atlas/workflow/aligned.py): two runs' layers on one map. Each member run's own
# workflow is loaded as a module with its config, so its dataset, model and render settings are its
# own; it provides the member's activations at shared positions and the icons of the aligned cells
# (rules extract_shared and aligned_icons). The rules here need no model: the joint layout, the cells
# of each member, the montages, the side-by-side image, the figures, the viewer and the manifest.
import os
import re
import sys

from activation_atlas.workflow.aligned import aligned_kept_outputs, aligned_outputs, check_aligned_config, member_named
from activation_atlas.workflow.config_schema import ConfigError
from activation_atlas.workflow.paths import AlignedFiles
from activation_atlas.workflow.settings import dataset_input, image_selection, umap_settings, viewer_page

try:
    MEMBERS = check_aligned_config(config, os.path.join(workflow.basedir, "schemas"))
except ConfigError as error:
    sys.exit(f"config: {error}")

RUN = config["run"]
ALIGNED_FILES = AlignedFiles(RUN)
LOGS = ALIGNED_FILES.logs
GRIDS = config["grid"]["sizes"]
TITLES = [member.title for member in MEMBERS]
VIEWER = config["viewer"]["enabled"]
MEMBER_RUNS = list(dict.fromkeys(member.run for member in MEMBERS))


# The member runs' workflows. Two runs of one dataset (or one model) both have rules that make it:
# the first run's make it.
module first:
    snakefile:
        os.path.join(workflow.basedir, "Snakefile")
    config:
        MEMBERS[0].given


use rule * from first as first_*


if len(MEMBER_RUNS) == 2:

    module second:
        snakefile:
            os.path.join(workflow.basedir, "Snakefile")
        config:
            MEMBERS[1].given

    use rule * from second as second_*

    defined = {rule.name for rule in workflow.rules}
    for shared_rule in (
        "generate_dataset",
        "download_dataset",
        "unpack_dataset",
        "train_model",
        "download_weights",
        "describe_model",
    ):
        if {f"first_{shared_rule}", f"second_{shared_rule}"} <= defined:
            workflow.ruleorder(f"first_{shared_rule}", f"second_{shared_rule}")


wildcard_constraints:
    member_run="|".join(re.escape(member.run) for member in MEMBERS),
    member_layer="|".join(re.escape(member.layer) for member in MEMBERS),
    grid=r"\d+",


rule aligned_layout:
    input:
        [member.activations for member in MEMBERS],
    output:
        layout=ALIGNED_FILES.layout(),
        scatter=ALIGNED_FILES.layout("png"),
    log:
        f"{LOGS}/layout.log",
    benchmark:
        f"{LOGS}/layout.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        seed=config["seed"],
        titles=TITLES,
        umap=umap_settings(config),
        scatter_size=config["layout"]["scatter_size"],
    script:
        "../scripts/aligned_layout.py"


rule aligned_cells:
    input:
        activations=lambda wildcards: member_named(MEMBERS, wildcards.member_run, wildcards.member_layer).activations,
        layout=ALIGNED_FILES.layout(),
        card=lambda wildcards: member_named(MEMBERS, wildcards.member_run, wildcards.member_layer).card,
    output:
        ALIGNED_FILES.member_cells("{member_run}", "{member_layer}", "{grid}"),
    log:
        f"{LOGS}/members/{{member_run}}/{{member_layer}}/cells_grid{{grid}}.log",
    benchmark:
        f"{LOGS}/members/{{member_run}}/{{member_layer}}/cells_grid{{grid}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.member_layer,
        grid_size=lambda wildcards: int(wildcards.grid),
        grid=config["grid"],
    script:
        "../scripts/bin_cells.py"


rule aligned_montage:
    input:
        icons=ALIGNED_FILES.member_icons("{member_run}", "{member_layer}", "{grid}"),
        cells=ALIGNED_FILES.member_cells("{member_run}", "{member_layer}", "{grid}"),
    output:
        atlas=ALIGNED_FILES.member_atlas("{member_run}", "{member_layer}", "{grid}"),
        tiles=directory(ALIGNED_FILES.member_tiles("{member_run}", "{member_layer}", "{grid}")),
    log:
        f"{LOGS}/members/{{member_run}}/{{member_layer}}/montage_grid{{grid}}.log",
    benchmark:
        f"{LOGS}/members/{{member_run}}/{{member_layer}}/montage_grid{{grid}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        **config["montage"],
    script:
        "../scripts/montage.py"


rule side_by_side:
    input:
        [ALIGNED_FILES.member_atlas(member.run, member.layer, "{grid}") for member in MEMBERS],
    output:
        ALIGNED_FILES.atlas("{grid}"),
    log:
        f"{LOGS}/side_by_side_grid{{grid}}.log",
    benchmark:
        f"{LOGS}/side_by_side_grid{{grid}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        titles=TITLES,
        background=config["montage"]["background"],
    script:
        "../scripts/side_by_side.py"


rule aligned_metrics:
    input:
        icons=[ALIGNED_FILES.member_icons(member.run, member.layer, grid) for member in MEMBERS for grid in GRIDS],
        cells=[ALIGNED_FILES.member_cells(member.run, member.layer, grid) for member in MEMBERS for grid in GRIDS],
        cards=[member.card for member in MEMBERS],
    output:
        ALIGNED_FILES.metrics,
    log:
        f"{LOGS}/metrics.log",
    benchmark:
        f"{LOGS}/metrics.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        titles=TITLES,
        grids=GRIDS,
    script:
        "../scripts/aligned_metrics.py"


rule aligned_viewer:
    input:
        card=MEMBERS[0].card,
        dataset=dataset_input(MEMBERS[0].config),
        cells=[ALIGNED_FILES.member_cells(member.run, member.layer, grid) for member in MEMBERS for grid in GRIDS],
        tiles=[ALIGNED_FILES.member_tiles(member.run, member.layer, grid) for member in MEMBERS for grid in GRIDS],
    output:
        html=ALIGNED_FILES.viewer_page,
        assets=directory(ALIGNED_FILES.viewer_assets),
    log:
        f"{LOGS}/viewer.log",
    benchmark:
        f"{LOGS}/viewer.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        seed=MEMBERS[0].config["seed"],
        images=image_selection(MEMBERS[0].config),
        atlases=[
            {
                "id": f"member{k}",
                "title": member.title,
                "partner": f"member{1 - k}",
                "levels": [
                    [
                        grid,
                        ALIGNED_FILES.member_cells(member.run, member.layer, grid),
                        ALIGNED_FILES.member_tiles(member.run, member.layer, grid),
                    ]
                    for grid in GRIDS
                ],
            }
            for k, member in enumerate(MEMBERS)
        ],
        page=viewer_page(config, MEMBERS[0].config["model"]["resize"]),
    script:
        "../scripts/viewer.py"


rule aligned_manifest:
    input:
        aligned_kept_outputs(ALIGNED_FILES, MEMBERS, GRIDS, VIEWER),
    output:
        ALIGNED_FILES.manifest,
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{LOGS}/manifest.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        run=RUN,
        seed=config["seed"],
    script:
        "../scripts/manifest.py"
