"""Rule manifest: every kept output of the run with its sha256 and the figures a reviewer compares."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.report import manifest

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        manifest(snakemake.input, snakemake.output[0], snakemake.params.run, snakemake.params.seed, log)
