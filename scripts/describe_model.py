"""Rule describe_model: load a model the workflow does not train; write its card (classes, layers)."""
from activation_atlas.pipeline import describe_model_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        describe_model_stage(weights, snakemake.output[0], snakemake.config, log)
