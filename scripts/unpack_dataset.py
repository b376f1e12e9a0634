"""Rule unpack_dataset: extract the downloaded archive, refusing members that leave the target."""
from activation_atlas.pipeline import unpack_dataset_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        unpack_dataset_stage(snakemake.input[0], snakemake.output[0], log)
