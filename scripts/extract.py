"""Rule extract: one shard of the dataset through the model, one activation file per layer."""
from activation_atlas.pipeline import extract_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        out_paths = dict(zip(snakemake.params.layers, snakemake.output))
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        extract_stage(snakemake.params.images, weights, snakemake.input.card, out_paths, snakemake.config,
                      snakemake.threads, log, shard=int(snakemake.wildcards.shard))
