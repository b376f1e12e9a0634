CLASS_LAYER = class_atlas_layer(config)
# Wildcard value (a file-name-safe slug) → the class as configured (name or index).
CLASS_SPECS = {class_slug(str(spec)): spec for spec in config["class_atlas"]["classes"]}
# Wildcard value → a two-class comparison as configured; its atlas is rendered like a class atlas.
COMPARISONS = {comparison_slug(pair): pair for pair in config["class_atlas"]["comparisons"]}
CLASS_DIR = f"{RESULTS}/class_atlas/{{cls}}"


rule class_cells:
    wildcard_constraints:
        cls=one_of(CLASS_SPECS),
    input:
        activations=f"{RESULTS}/activations/{CLASS_LAYER}.h5",
        card=MODEL_CARD,
    output:
        layout=f"{CLASS_DIR}/layout.h5",
        scatter=f"{CLASS_DIR}/layout.png",
        cells=f"{CLASS_DIR}/cells.h5",
    params:
        seed=config["seed"],
        spec=lambda wildcards: CLASS_SPECS[wildcards.cls],
        class_atlas=config["class_atlas"],
        layout=config["layout"],
    log:
        f"{LOGS}/class_atlas/{{cls}}/cells.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/cells.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/class_cells.py"


rule comparison_cells:
    wildcard_constraints:
        cls=one_of(COMPARISONS),
    input:
        activations=f"{RESULTS}/activations/{CLASS_LAYER}.h5",
        card=MODEL_CARD,
    output:
        layout=f"{CLASS_DIR}/layout.h5",
        scatter=f"{CLASS_DIR}/layout.png",
        cells=f"{CLASS_DIR}/cells.h5",
    params:
        seed=config["seed"],
        pair=lambda wildcards: COMPARISONS[wildcards.cls],
        class_atlas=config["class_atlas"],
        layout=config["layout"],
    log:
        f"{LOGS}/class_atlas/{{cls}}/cells.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/cells.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/comparison_cells.py"


rule class_icons:
    input:
        cells=f"{CLASS_DIR}/cells.h5",
        activations=f"{RESULTS}/activations/{CLASS_LAYER}.h5",
        weights=MODEL_WEIGHTS,
        card=MODEL_CARD,
    output:
        f"{CLASS_DIR}/icons.h5",
    params:
        seed=config["seed"],
        layer=CLASS_LAYER,
        grid=config["class_atlas"]["grid_size"],
        render=config["render"],
    log:
        f"{LOGS}/class_atlas/{{cls}}/icons.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/icons.benchmark.tsv"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=120),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/render_icons.py"


rule class_montage:
    input:
        icons=f"{CLASS_DIR}/icons.h5",
        cells=f"{CLASS_DIR}/cells.h5",
    output:
        atlas=f"{CLASS_DIR}/atlas.png",
        tiles=directory(f"{CLASS_DIR}/tiles"),
    params:
        montage=config["montage"],
    log:
        f"{LOGS}/class_atlas/{{cls}}/montage.log",
    benchmark:
        f"{LOGS}/class_atlas/{{cls}}/montage.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/layout.yaml"
    script:
        "../scripts/montage.py"
