"""Rule attack_shard: one shard of the images, clean and patched, through the network."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.attacks import AttackShard, attack_shard

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        weights = snakemake.input.weights[0] if snakemake.input.weights else None
        attack_shard(
            snakemake.input.images,
            snakemake.input.patches,
            weights,
            snakemake.input.card,
            snakemake.output[0],
            settings_of(snakemake, AttackShard),
            snakemake.threads,
            log,
        )
