"""Rule atlas_metrics: the quality figures of one layer's atlases."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.atlas import Metrics, atlas_metrics

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        atlas_metrics(
            snakemake.input.card,
            snakemake.input.activations,
            snakemake.input.layout,
            snakemake.input.cells,
            snakemake.input.icons,
            snakemake.output[0],
            settings_of(snakemake, Metrics),
            log,
        )
