"""Rule unpack_dataset: extract the downloaded archive, refusing members that leave the target."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.data import unpack_dataset

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        unpack_dataset(snakemake.input[0], snakemake.output[0], log)
