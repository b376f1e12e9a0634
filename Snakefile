# Activation atlases as a Snakemake workflow: dataset → model → activations → UMAP layout → grid
# cells → icons by feature inversion → atlas images and metrics. See README.md.
import os
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, workflow.basedir)
from activation_atlas.class_atlas import class_atlas_layer, class_slug, comparison_slug
from activation_atlas.pipeline import cells_count, render_chunks

min_version("9.0")


# config.yaml is the default run. A --configfile replaces it rather than being merged into it, so no
# nested key of the default (a per-layer override, say) leaks into another run's configuration.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")
if (
    config["class_atlas"]["classes"] or config["class_atlas"]["comparisons"]
) and not config["extract"]["attribution"]:
    raise ValueError(
        "class_atlas.classes and class_atlas.comparisons need attributions: "
        "set extract.attribution: true"
    )

# glibc returns torch's large per-batch buffers to the OS and faults them back in on every batch;
# these thresholds keep them mapped (1.3-2x faster torch stages on CPU). Jobs inherit them.
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "4294967296")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "68719476736")
# torchvision fetches published weights into $TORCH_HOME: keep them with the other resources.
os.environ.setdefault("TORCH_HOME", os.path.abspath("resources/torch_home"))


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/model.smk"
include: "rules/extract.smk"
include: "rules/layout.smk"
include: "rules/bin.smk"
include: "rules/render.smk"
include: "rules/atlas.smk"
include: "rules/class_atlas.smk"
include: "rules/viewer.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
