# Activation atlases as a Snakemake workflow: dataset → model → activations → UMAP layout → grid
# cells → icons by feature inversion → atlas images and metrics. See docs/architecture.md.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default run. A --configfile replaces it rather than being merged into it, so no
# nested key of the default (a per-layer override, say) leaks into another run's configuration.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


if "aligned" in config:

    # An aligned atlas of two runs' layers (config/aligned-demo.yaml): it loads each run's workflow
    # (this file, with that run's config) as a module.
    include: "rules/aligned.smk"

    rule aligned_all:
        default_target: True
        input:
            aligned_outputs(ALIGNED_FILES, GRIDS, VIEWER),

else:

    # `snakemake --report` (make report): the run's figures, metrics, model card and configuration.
    report: "report/workflow.rst"

    include: "rules/common.smk"
    include: "rules/data.smk"
    include: "rules/model.smk"
    include: "rules/extract.smk"
    include: "rules/layout.smk"
    include: "rules/cells.smk"
    include: "rules/render.smk"
    include: "rules/atlas.smk"
    include: "rules/class_atlas.smk"
    include: "rules/attacks.smk"
    include: "rules/dictionary.smk"
    include: "rules/viewer.smk"
    include: "rules/report.smk"

    rule all:
        default_target: True
        input:
            paths.run_targets(RUN_FILES, RUN_CONTENTS),
