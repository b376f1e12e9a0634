"""Rule bin_cells: the kept cells of one layer's G×G grid."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.cells import Binning, bin_cells

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        bin_cells(
            snakemake.input.activations,
            snakemake.input.layout,
            snakemake.input.card,
            snakemake.output[0],
            settings_of(snakemake, Binning),
            log,
        )
