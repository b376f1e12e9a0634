"""Rule evaluate_model: the run's model card, with the model's accuracy on the extracted images."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.extract import evaluate_model

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        evaluate_model(snakemake.input.activations, snakemake.input.card, snakemake.output[0], log)
