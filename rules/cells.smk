# A checkpoint: the number of render jobs of a grid follows from its cells.
checkpoint bin_cells:
    input:
        activations=RUN_FILES.activations("{layer}"),
        layout=RUN_FILES.layout("{layer}"),
        card=MODEL_FILES.card,
    output:
        RUN_FILES.cells("{layer}", "{grid}"),
    log:
        f"{LOGS}/cells/{{layer}}/grid{{grid}}.log",
    benchmark:
        f"{LOGS}/cells/{{layer}}/grid{{grid}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        grid_size=lambda wildcards: int(wildcards.grid),
        grid=config["grid"],
    script:
        "../scripts/bin_cells.py"
