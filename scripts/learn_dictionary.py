"""Rule learn_dictionary: a TopK sparse autoencoder learned on one layer's activations, its atoms' statistics
and its quality."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.dictionary import DictionaryLearning, learn_dictionary

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        learn_dictionary(
            snakemake.input[0], snakemake.output[0], settings_of(snakemake, DictionaryLearning), snakemake.threads, log
        )
