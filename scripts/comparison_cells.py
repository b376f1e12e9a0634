"""Rule comparison_cells: two classes' activations laid out by attribution difference and binned."""
from activation_atlas.pipeline import comparison_cells_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        comparison_cells_stage(snakemake.input.activations, snakemake.input.card, snakemake.params.pair,
                               snakemake.output.layout, snakemake.output.scatter, snakemake.output.cells,
                               snakemake.config, log)
