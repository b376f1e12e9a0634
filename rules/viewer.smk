rule viewer:
    input:
        card=MODEL_CARD,
        dataset=dataset_input(),
        cells=expand(f"{RESULTS}/cells/{{layer}}/grid{{grid}}.h5", layer=LAYERS, grid=GRIDS),
        tiles=expand(f"{RESULTS}/atlas/{{layer}}/tiles/grid{{grid}}", layer=LAYERS, grid=GRIDS),
        class_tiles=[f"{RESULTS}/class_atlas/{slug}/tiles" for slug in CLASS_ATLASES],
    output:
        html=f"{RESULTS}/viewer.html",
        assets=directory(f"{RESULTS}/viewer"),
    params:
        seed=config["seed"],
        images=image_selection(),
        atlases=viewer_atlases(),
        page=settings.viewer_page(config, MODEL["resize"]),
    log:
        f"{LOGS}/viewer/viewer.log",
    benchmark:
        f"{LOGS}/viewer/viewer.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        # Sample thumbnails are read like the extraction reads images (activation_atlas.data).
        "../envs/torch.yaml"
    script:
        "../scripts/viewer.py"
