"""Rule class_cells: a class atlas's or a comparison's activations, selected by attribution, laid out
and binned."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.class_atlas import Selection, class_cells

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        class_cells(
            snakemake.input.activations,
            snakemake.input.card,
            snakemake.output.layout,
            snakemake.output.scatter,
            snakemake.output.cells,
            settings_of(snakemake, Selection),
            log,
        )
