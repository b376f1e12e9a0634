"""Rule describe_model: load the model; write its card (classes, layers, layer grids, training figures)."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.model import Description, describe_model

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        training = snakemake.input.training[0] if snakemake.input.training else None
        describe_model(weights, snakemake.output[0], settings_of(snakemake, Description), log, training)
