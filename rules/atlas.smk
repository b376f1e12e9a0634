rule montage:
    input:
        icons=RUN_FILES.icons("{layer}", "{grid}"),
        cells=RUN_FILES.cells("{layer}", "{grid}"),
    output:
        atlas=report(
            RUN_FILES.atlas("{layer}", "{grid}"),
            caption="../report/atlas.rst",
            category="Atlases",
            subcategory="{layer}",
            labels={"layer": "{layer}", "grid": "{grid} × {grid}"},
        ),
        tiles=directory(RUN_FILES.tiles("{layer}", "{grid}")),
    log:
        f"{LOGS}/atlas/{{layer}}/grid{{grid}}.log",
    benchmark:
        f"{LOGS}/atlas/{{layer}}/grid{{grid}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **config["montage"],
    script:
        "../scripts/montage.py"


rule atlas_metrics:
    input:
        card=RUN_FILES.model_card,
        activations=RUN_FILES.activations("{layer}"),
        layout=RUN_FILES.layout("{layer}"),
        cells=expand(RUN_FILES.cells("{{layer}}", "{grid}"), grid=GRIDS),
        icons=expand(RUN_FILES.icons("{{layer}}", "{grid}"), grid=GRIDS),
    output:
        report(
            RUN_FILES.metrics("{layer}"),
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"layer": "{layer}"},
        ),
    log:
        f"{LOGS}/atlas/{{layer}}/metrics.log",
    benchmark:
        f"{LOGS}/atlas/{{layer}}/metrics.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        grids=GRIDS,
        metric=lambda wildcards: umap_settings(config, wildcards.layer)["metric"],
        trustworthiness_sample=config["metrics"]["trustworthiness_sample"],
        trustworthiness_neighbors=config["metrics"]["trustworthiness_neighbors"],
    script:
        "../scripts/atlas_metrics.py"
