"""Rule attack_images: the images of class a a patch attack is tried on."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.attacks import AttackImages, attack_images

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        attack_images(snakemake.input.card, snakemake.output[0], settings_of(snakemake, AttackImages), log)
