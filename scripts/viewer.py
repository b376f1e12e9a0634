"""Rule viewer: the run's interactive viewer page, its data and sample thumbnails."""

from pathlib import Path

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.viewer import Viewer, viewer

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        # The page sits in the run folder, results/<run>/.
        viewer(
            Path(snakemake.output.html).parent,
            snakemake.input.card,
            snakemake.output.html,
            snakemake.output.assets,
            settings_of(snakemake, Viewer),
            log,
        )
