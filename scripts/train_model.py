"""Rule train_model: train the demo CNN; weights and its model card with held-out metrics."""
from activation_atlas.pipeline import train_model_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log.log) as log:
        train_model_stage(snakemake.input.dataset, snakemake.output.weights, snakemake.output.card,
                          snakemake.log.timing, snakemake.config, snakemake.threads, log)
