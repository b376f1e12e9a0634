"""Rule aligned_layout: one UMAP of both members' activations, and its scatter plot."""

from activation_atlas.runtime import ProgressLog, settings_of
from activation_atlas.stages.aligned import JointLayout, joint_layout

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        joint_layout(
            list(snakemake.input),
            snakemake.output.layout,
            snakemake.output.scatter,
            settings_of(snakemake, JointLayout),
            log,
        )
