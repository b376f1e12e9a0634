"""Rule viewer: the run's interactive viewer page, its data and sample thumbnails."""
from pathlib import Path

from activation_atlas.pipeline import viewer_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        # The page sits in the run folder, results/<run>/.
        viewer_stage(Path(snakemake.output.html).parent, snakemake.params.images, snakemake.input.card,
                     snakemake.output.html, snakemake.output.assets, snakemake.config, log)
