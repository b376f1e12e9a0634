rule layout:
    input:
        RUN_FILES.activations("{layer}"),
    output:
        layout=RUN_FILES.layout("{layer}"),
        scatter=report(
            RUN_FILES.layout("{layer}", "png"),
            caption="../report/layout.rst",
            category="Layouts",
            labels={"layer": "{layer}"},
        ),
    log:
        f"{LOGS}/layout/{{layer}}.log",
    benchmark:
        f"{LOGS}/layout/{{layer}}.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    # A seeded UMAP optimises on one thread; umap-learn-threaded-knn searches neighbours on `threads`.
    threads: lambda wildcards: layout_threads(umap_settings(config, wildcards.layer))
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        umap=lambda wildcards: umap_settings(config, wildcards.layer),
        scatter_size=config["layout"]["scatter_size"],
    script:
        "../scripts/layout.py"
