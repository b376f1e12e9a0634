"""Rule extract: one shard of the dataset through the model, one activation file per layer."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.extract import Extraction, extract

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        settings = settings_of(snakemake, Extraction)
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        extract(
            weights,
            snakemake.input.card,
            dict(zip(settings.layers, snakemake.output)),
            settings,
            snakemake.threads,
            log,
        )
