"""Rule atlas_metrics: the quality figures of one layer's atlases."""
from activation_atlas.pipeline import metrics_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        grids = snakemake.params.grids
        metrics_stage(snakemake.input.card, snakemake.input.activations, snakemake.input.layout,
                      dict(zip(grids, snakemake.input.cells)), dict(zip(grids, snakemake.input.icons)),
                      snakemake.output[0], snakemake.wildcards.layer, snakemake.config, log)
