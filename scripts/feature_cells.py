"""Rule feature_cells: a dictionary's atoms laid out by UMAP of their directions, one grid cell each."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.dictionary import FeatureLayout, feature_cells

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        feature_cells(
            snakemake.input.dictionary,
            snakemake.input.activations,
            snakemake.input.card,
            snakemake.output.layout,
            snakemake.output.scatter,
            snakemake.output.cells,
            settings_of(snakemake, FeatureLayout),
            log,
        )
