"""Rule numerics: whether the run computes with portable or native kernels, and the pins it sets."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.report import numerics

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        numerics(snakemake.params.portable, snakemake.params.environment, snakemake.output[0], log)
