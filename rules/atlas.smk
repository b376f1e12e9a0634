rule montage:
    input:
        icons=f"{RESULTS}/icons/{{layer}}/grid{{grid}}.h5",
        cells=f"{RESULTS}/cells/{{layer}}/grid{{grid}}.h5",
    output:
        atlas=report(
            f"{RESULTS}/atlas/{{layer}}/grid{{grid}}.png",
            caption="../report/atlas.rst",
            category="Atlases",
            subcategory="{layer}",
            labels={"layer": "{layer}", "grid": "{grid} × {grid}"},
        ),
        tiles=directory(f"{RESULTS}/atlas/{{layer}}/tiles/grid{{grid}}"),
    params:
        **config["montage"],
    log:
        f"{LOGS}/atlas/{{layer}}/grid{{grid}}.log",
    benchmark:
        f"{LOGS}/atlas/{{layer}}/grid{{grid}}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/montage.py"


rule atlas_metrics:
    input:
        card=RUN_MODEL_CARD,
        activations=f"{RESULTS}/activations/{{layer}}.h5",
        layout=f"{RESULTS}/layout/{{layer}}.h5",
        cells=expand(f"{RESULTS}/cells/{{{{layer}}}}/grid{{grid}}.h5", grid=GRIDS),
        icons=expand(f"{RESULTS}/icons/{{{{layer}}}}/grid{{grid}}.h5", grid=GRIDS),
    output:
        report(
            f"{RESULTS}/atlas/{{layer}}/metrics.json",
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"layer": "{layer}"},
        ),
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        grids=GRIDS,
        metric=lambda wildcards: umap_settings(config, wildcards.layer)["metric"],
        trustworthiness_sample=config["metrics"]["trustworthiness_sample"],
        trustworthiness_neighbors=config["metrics"]["trustworthiness_neighbors"],
    log:
        f"{LOGS}/atlas/{{layer}}/metrics.log",
    benchmark:
        f"{LOGS}/atlas/{{layer}}/metrics.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/atlas_metrics.py"
