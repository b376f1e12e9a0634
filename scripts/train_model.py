"""Rule train_model: train the demo CNN or ViT; its weights and what the training measured."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.model import Training, train_model

if "snakemake" in globals():
    with ProgressLog(snakemake.log.log) as log:
        train_model(
            snakemake.input.dataset,
            snakemake.output.weights,
            snakemake.output.training,
            snakemake.log.timing,
            settings_of(snakemake, Training),
            snakemake.threads,
            log,
        )
