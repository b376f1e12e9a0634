"""Rule provenance: what the run's numbers depend on besides its config, beside the run's logs."""

from activation_atlas.runtime import ProgressLog
from activation_atlas.stages.report import provenance

if "snakemake" in globals():
    with ProgressLog(snakemake.log[0]) as log:
        provenance(snakemake.params.workflow, snakemake.output[0], log)
