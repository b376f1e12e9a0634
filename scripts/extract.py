"""Rule extract: one activation file per layer from one pass over the dataset."""
from activation_atlas.pipeline import extract_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        out_paths = dict(zip(snakemake.params.layers, snakemake.output))
        extract_stage(snakemake.input.dataset, snakemake.input.weights, snakemake.input.metrics,
                      out_paths, snakemake.config, snakemake.threads, log)
