"""Rules render_icons and class_icons: feature inversion of every kept cell's mean activation."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.render import Rendering, render_icons

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        spectrum = snakemake.input.spectrum[0] if snakemake.input.spectrum else None
        render_icons(
            snakemake.input.cells,
            snakemake.input.activations,
            weights,
            snakemake.input.card,
            spectrum,
            snakemake.output[0],
            settings_of(snakemake, Rendering),
            snakemake.threads,
            log,
        )
