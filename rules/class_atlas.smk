# Class atlases and two-class comparisons: their own selection, layout and cells, then rendered and
# drawn by the render_icons and montage rules with their paths.


rule class_cells:
    input:
        activations=RUN_FILES.activations(CLASS_LAYER),
        card=MODEL_FILES.card,
    output:
        layout=RUN_FILES.class_atlas("{cls}", "layout.h5"),
        scatter=report(
            RUN_FILES.class_atlas("{cls}", "layout.png"),
            caption="../report/class_layout.rst",
            category="Class atlases",
            labels={"class atlas": "{cls}", "figure": "layout"},
        ),
        cells=RUN_FILES.class_atlas("{cls}", "cells.h5"),
    log:
        f"{LOGS}/class_atlas/{{cls}}/cells.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/cells.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: layout_threads(umap_settings(config, CLASS_LAYER))
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["seed"],
        layer=CLASS_LAYER,
        classes=lambda wildcards: CLASS_ATLASES[wildcards.cls],
        umap=umap_settings(config, CLASS_LAYER),
        scatter_size=config["layout"]["scatter_size"],
        samples_per_cell=config["grid"]["samples_per_cell"],
        class_atlas=config["class_atlas"],
    script:
        "../scripts/class_cells.py"


use rule render_icons as class_icons with:
    input:
        cells=RUN_FILES.class_atlas("{cls}", "cells.h5"),
        activations=RUN_FILES.activations(CLASS_LAYER),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        spectrum=spectrum_input(CLASS_LAYER),
    output:
        RUN_FILES.class_atlas("{cls}", "icons.h5"),
    log:
        f"{LOGS}/class_atlas/{{cls}}/icons.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/icons.benchmark.tsv"
    params:
        layer=CLASS_LAYER,
        grid_size=config["class_atlas"]["grid_size"],
        chunk=None,
        render=render_settings(CLASS_LAYER),


use rule montage as class_montage with:
    input:
        icons=RUN_FILES.class_atlas("{cls}", "icons.h5"),
        cells=RUN_FILES.class_atlas("{cls}", "cells.h5"),
    output:
        atlas=report(
            RUN_FILES.class_atlas("{cls}", "atlas.png"),
            caption="../report/class_atlas.rst",
            category="Class atlases",
            labels={"class atlas": "{cls}", "figure": "atlas"},
        ),
        tiles=directory(RUN_FILES.class_atlas("{cls}", "tiles")),
    log:
        f"{LOGS}/class_atlas/{{cls}}/montage.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/montage.benchmark.tsv"
