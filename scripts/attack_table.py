"""Rule attack_table: the shards merged; the attack's table and figure."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.attacks import AttackTable, attack_table

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        attack_table(
            snakemake.input.shards,
            snakemake.input.images,
            snakemake.input.patches,
            snakemake.input.card,
            snakemake.output.results,
            snakemake.output.table,
            snakemake.output.figure,
            settings_of(snakemake, AttackTable),
            log,
        )
