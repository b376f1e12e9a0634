"""Rule generate_dataset: the procedural demo dataset in the image-folder layout."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.data import GeneratedDataset, generate_dataset

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        generate_dataset(snakemake.output[0], settings_of(snakemake, GeneratedDataset), log)
