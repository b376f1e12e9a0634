"""Rule generate_dataset: the procedural demo dataset in the image-folder layout."""
from activation_atlas.pipeline import generate_dataset_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        generate_dataset_stage(snakemake.output[0], snakemake.config, log)
