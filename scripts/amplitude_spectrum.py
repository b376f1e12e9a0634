"""Rule amplitude_spectrum: the mean amplitude spectrum of the dataset's images at one icon size."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.render import Spectrum, amplitude_spectrum

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        amplitude_spectrum(snakemake.output[0], settings_of(snakemake, Spectrum), log)
