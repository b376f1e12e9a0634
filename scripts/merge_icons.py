"""Rule merge_icons: one grid's icon chunks, concatenated in order."""
from activation_atlas.pipeline import merge_icons_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        merge_icons_stage(snakemake.input, snakemake.output[0], log)
