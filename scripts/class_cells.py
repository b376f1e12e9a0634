"""Rule class_cells: select one class's activations by attribution, lay them out and bin them."""
from activation_atlas.pipeline import class_cells_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        class_cells_stage(snakemake.input.activations, snakemake.input.card, snakemake.params.spec,
                          snakemake.output.layout, snakemake.output.scatter, snakemake.output.cells,
                          snakemake.config, log)
