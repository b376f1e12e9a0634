# What a reviewer checks a run by: its provenance (outside results/, which stays byte-identical), its
# manifest, its kernel mode (numerics) and, with `snakemake --report`, its figures (report/*.rst).


rule provenance:
    output:
        report(
            RUN_FILES.provenance,
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"file": "provenance.json"},
        ),
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{LOGS}/provenance.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        # Commit, config hash, packages and CPU as the workflow sees them: any change reruns this rule.
        workflow=workflow_facts(workflow.basedir, config),
    script:
        "../scripts/provenance.py"


rule manifest:
    input:
        paths.run_kept_outputs(RUN_FILES, RUN_CONTENTS),
    output:
        RUN_FILES.manifest,
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{LOGS}/manifest.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        run=RUN,
        seed=config["seed"],
    script:
        "../scripts/manifest.py"


rule numerics:
    output:
        RUN_FILES.numerics,
    log:
        f"{LOGS}/numerics.log",
    benchmark:
        f"{LOGS}/numerics.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        portable=config["portable"],
        environment=PORTABLE_ENVIRONMENT if config["portable"] else {},
    script:
        "../scripts/numerics.py"
