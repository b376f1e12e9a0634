"""Rules download_dataset and download_weights: fetch a URL, verified by sha256 or a pin file."""
from activation_atlas.pipeline import download_stage
from activation_atlas.runtime import ProgressLog

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        download_stage(snakemake.params.url, snakemake.output[0], snakemake.params.sha256,
                       snakemake.params.pin, log)
