"""Rule merge_activations: a layer's shard files, concatenated in order, into its activation file."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.extract import merge_activations

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        merge_activations(snakemake.input, snakemake.output[0], log)
