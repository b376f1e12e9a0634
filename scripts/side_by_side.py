"""Rule side_by_side: the members' atlases of one grid next to each other in one image."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.aligned import SideBySide, side_by_side

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        side_by_side(list(snakemake.input), snakemake.output[0], settings_of(snakemake, SideBySide), log)
