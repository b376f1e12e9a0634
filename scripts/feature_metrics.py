"""Rule feature_metrics: a dictionary's quality, the figures of its feature atlas and the layer's units
compared."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.dictionary import FeatureMetrics, MetricsInputs, feature_metrics

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        given = snakemake.input
        inputs = MetricsInputs(
            card=given.card,
            dictionary=given.dictionary,
            activations=given.activations,
            cells=given.cells,
            icons=given.icons,
            neuron_icons=given.neuron_icons,
            layer_cells=list(given.layer_cells),
            layer_icons=list(given.layer_icons),
        )
        feature_metrics(inputs, snakemake.output[0], settings_of(snakemake, FeatureMetrics), log)
