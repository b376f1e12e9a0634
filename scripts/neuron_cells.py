"""Rule neuron_cells: a layer's channels as cells, to be rendered and compared with its atoms."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.dictionary import NeuronCells, neuron_cells

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        neuron_cells(snakemake.input[0], snakemake.output[0], settings_of(snakemake, NeuronCells), log)
