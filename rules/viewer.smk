rule viewer:
    input:
        card=MODEL_FILES.card,
        dataset=dataset_input(),
        cells=expand(RUN_FILES.cells("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        tiles=expand(RUN_FILES.tiles("{layer}", "{grid}"), layer=LAYERS, grid=GRIDS),
        class_tiles=[RUN_FILES.class_atlas(slug, "tiles") for slug in CLASS_ATLASES],
        dictionaries=[RUN_FILES.dictionary(layer, "dictionary.h5") for layer in config["dictionary"]["layers"]],
        feature_cells=[RUN_FILES.dictionary(layer, "cells.h5") for layer in config["dictionary"]["layers"]],
        feature_tiles=[RUN_FILES.dictionary(layer, "tiles") for layer in config["dictionary"]["layers"]],
    output:
        html=RUN_FILES.viewer_page,
        assets=directory(RUN_FILES.viewer_assets),
    log:
        f"{LOGS}/viewer/viewer.log",
    benchmark:
        f"{LOGS}/viewer/viewer.benchmark.tsv"
    conda:
        # Sample thumbnails are read like the extraction reads images (activation_atlas.data).
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        seed=config["seed"],
        images=image_selection(),
        atlases=settings.viewer_atlases(
            RUN_FILES,
            {layer: GRIDS for layer in LAYERS},
            {slug: (shown, CLASS_LAYER, config["class_atlas"]["grid_size"]) for slug, shown in CLASS_ATLASES.items()},
            config["dictionary"]["layers"],
        ),
        page=settings.viewer_page(config, MODEL["resize"]),
    script:
        "../scripts/viewer.py"
