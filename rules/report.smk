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
    params:
        # Commit, config hash, packages and CPU as the workflow sees them: any change reruns this rule.
        workflow=workflow_facts(workflow.basedir, config),
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{LOGS}/provenance.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/provenance.py"


rule manifest:
    input:
        kept_outputs(),
    output:
        RUN_FILES.manifest,
    params:
        run=RUN,
        seed=config["seed"],
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{LOGS}/manifest.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/manifest.py"


rule numerics:
    output:
        RUN_FILES.numerics,
    params:
        portable=config["portable"],
        environment=PORTABLE_ENVIRONMENT if config["portable"] else {},
    log:
        f"{LOGS}/numerics.log",
    benchmark:
        f"{LOGS}/numerics.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/numerics.py"
