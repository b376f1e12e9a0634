"""Rule montage: the atlas image of one layer and grid size."""
from activation_atlas.pipeline import montage_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        montage_stage(snakemake.input[0], snakemake.output[0], snakemake.config)
        log(f"wrote {snakemake.output[0]}")
