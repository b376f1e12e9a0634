"""Rule layout: UMAP of one layer's activations, normalised, plus a scatter plot."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.layout import Layout, layout

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        layout(
            snakemake.input[0], snakemake.output.layout, snakemake.output.scatter, settings_of(snakemake, Layout), log
        )
