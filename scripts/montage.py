"""Rules montage and class_montage: an atlas as tiles and as one image."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.atlas import Montage, montage

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        montage(
            snakemake.input.icons,
            snakemake.input.cells,
            snakemake.output.atlas,
            snakemake.output.tiles,
            settings_of(snakemake, Montage),
            log,
        )
