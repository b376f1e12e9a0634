"""Rule bin_cells: the kept cells of one layer's G×G grid."""
from activation_atlas.pipeline import bin_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        bin_stage(snakemake.input.activations, snakemake.input.layout, snakemake.input.card,
                  snakemake.output[0], snakemake.wildcards.layer, int(snakemake.wildcards.grid),
                  snakemake.config, log)
