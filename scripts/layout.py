"""Rule layout: UMAP of one layer's activations, normalised, plus a scatter plot."""
from activation_atlas.pipeline import layout_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        layout_stage(snakemake.input[0], snakemake.output.layout, snakemake.output.scatter,
                     snakemake.wildcards.layer, snakemake.config, log)
