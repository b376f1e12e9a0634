"""Rule render_icons: feature inversion of every kept cell's mean activation."""
from activation_atlas.pipeline import render_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        render_stage(snakemake.input.cells, snakemake.input.activations, weights, snakemake.input.card,
                     snakemake.output[0], snakemake.wildcards.layer, int(snakemake.wildcards.grid),
                     snakemake.config, snakemake.threads, log)
