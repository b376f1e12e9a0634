"""Rule merge_activations: a layer's shard files, concatenated in order, into its activation file."""
from activation_atlas.pipeline import merge_activations_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        merge_activations_stage(snakemake.input, snakemake.output[0], log)
