"""Rule attack_patches: a comparison's patches and their controls, at every size."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.attacks import AttackPatches, make_patches

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        make_patches(
            snakemake.input.cells,
            snakemake.input.icons,
            snakemake.input.layout,
            snakemake.input.activations,
            snakemake.input.card,
            snakemake.output[0],
            settings_of(snakemake, AttackPatches),
            log,
        )
