rule render_icons:
    input:
        cells=RUN_FILES.cells("{layer}", "{grid}"),
        activations=RUN_FILES.activations("{layer}"),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        spectrum=lambda wildcards: spectrum_input(wildcards.layer),
    output:
        temp(RUN_FILES.icon_chunk("{layer}", "{grid}", "{chunk}")),
    log:
        f"{LOGS}/render/{{layer}}/grid{{grid}}/chunk{{chunk}}.log",
    benchmark:
        f"{LOGS}/render/{{layer}}/grid{{grid}}/chunk{{chunk}}.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=240),
    params:
        seed=config["seed"],
        device=config["device"],
        layer=lambda wildcards: wildcards.layer,
        grid_size=lambda wildcards: int(wildcards.grid),
        chunk=lambda wildcards: int(wildcards.chunk),
        render=lambda wildcards: render_settings(wildcards.layer),
        # The icons file records the render section as configured.
        render_config=config["render"],
        model=MODEL,
        input_size=MODEL_INPUT_SIZE,
    script:
        "../scripts/render_icons.py"


rule merge_icons:
    input:
        icon_chunks,
    output:
        RUN_FILES.icons("{layer}", "{grid}"),
    log:
        f"{LOGS}/render/{{layer}}/grid{{grid}}/merge.log",
    benchmark:
        f"{LOGS}/render/{{layer}}/grid{{grid}}/merge.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/merge_icons.py"


rule amplitude_spectrum:
    input:
        dataset=dataset_input(),
        numerics=RUN_FILES.numerics,
    output:
        RUN_FILES.spectrum("{size}"),
    log:
        f"{LOGS}/render/spectrum{{size}}px.log",
    benchmark:
        f"{LOGS}/render/spectrum{{size}}px.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        **torch_resources(mem_mb=4000, runtime=30),
    params:
        seed=config["seed"],
        icon_size=lambda wildcards: int(wildcards.size),
        images=image_selection(),
        resize=MODEL["resize"],
        on_unreadable=DATASET["on_unreadable"],
        spectrum_images=config["render"]["spectrum_images"],
    script:
        "../scripts/amplitude_spectrum.py"


# For an aligned atlas (rules/aligned.smk) that has this run as a member: the icons of the aligned
# atlas's cells, rendered by this run's model with this run's render settings.
rule aligned_icons:
    input:
        cells=f"results/{{aligned}}/members/{RUN}/{{layer}}/cells/grid{{grid}}.h5",
        activations=RUN_FILES.shared_activations("{layer}"),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        spectrum=lambda wildcards: spectrum_input(wildcards.layer),
    output:
        f"results/{{aligned}}/members/{RUN}/{{layer}}/icons/grid{{grid}}.h5",
    log:
        f"logs/{{aligned}}/members/{RUN}/{{layer}}/render_grid{{grid}}.log",
    benchmark:
        f"logs/{{aligned}}/members/{RUN}/{{layer}}/render_grid{{grid}}.benchmark.tsv"
    wildcard_constraints:
        aligned=r"[A-Za-z0-9_-][A-Za-z0-9_.-]*",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=240),
    params:
        seed=config["seed"],
        device=config["device"],
        layer=lambda wildcards: wildcards.layer,
        grid_size=lambda wildcards: int(wildcards.grid),
        chunk=None,
        render=lambda wildcards: render_settings(wildcards.layer),
        render_config=config["render"],
        model=MODEL,
        input_size=MODEL_INPUT_SIZE,
    script:
        "../scripts/render_icons.py"
