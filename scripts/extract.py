"""Rule extract: one activation file per layer from one pass over the dataset."""
from activation_atlas.pipeline import extract_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        out_paths = dict(zip(snakemake.params.layers, snakemake.output))
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        extract_stage(snakemake.params.images, weights, snakemake.input.card, out_paths, snakemake.config,
                      snakemake.threads, log)
