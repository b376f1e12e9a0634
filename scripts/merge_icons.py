"""Rule merge_icons: one grid's icon chunks, concatenated in order."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.render import merge_icons

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        merge_icons(snakemake.input, snakemake.output[0], log)
