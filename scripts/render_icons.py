"""Rules render_icons and class_icons: feature inversion of every kept cell's mean activation."""
from activation_atlas.pipeline import render_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        # render_icons takes layer and grid from its wildcards, class_icons from its params.
        layer = snakemake.wildcards.get("layer", snakemake.params.get("layer"))
        grid = int(snakemake.wildcards.get("grid", snakemake.params.get("grid")))
        chunk = snakemake.wildcards.get("chunk")
        render_stage(snakemake.input.cells, snakemake.input.activations, weights, snakemake.input.card,
                     snakemake.output[0], layer, grid, snakemake.config, snakemake.threads, log,
                     chunk=int(chunk) if chunk is not None else None)
