"""Rules download_dataset and download_weights: fetch a URL, verified by sha256 or a pin file."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.data import Download, download

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        download(snakemake.output[0], settings_of(snakemake, Download), log)
