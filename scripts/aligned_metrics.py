"""Rule aligned_metrics: each member's icon fidelity and class agreement, per grid."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.aligned import AlignedFigures, aligned_metrics

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        aligned_metrics(
            snakemake.input.icons,
            snakemake.input.cells,
            snakemake.input.cards,
            snakemake.output[0],
            settings_of(snakemake, AlignedFigures),
            log,
        )
