"""Rule feature_metrics: a dictionary's quality and the figures of its feature atlas."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.dictionary import FeatureMetrics, feature_metrics

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        feature_metrics(
            snakemake.input.card,
            snakemake.input.dictionary,
            snakemake.input.activations,
            snakemake.input.cells,
            snakemake.input.icons,
            snakemake.output[0],
            settings_of(snakemake, FeatureMetrics),
            log,
        )
