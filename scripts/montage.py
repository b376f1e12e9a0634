"""Rules montage and class_montage: an atlas as tiles and as one image."""
from activation_atlas.pipeline import montage_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        montage_stage(snakemake.input.icons, snakemake.input.cells, snakemake.output.atlas,
                      snakemake.output.tiles, snakemake.config, log)
