# Patch attacks on class comparisons (attacks.enabled): the images of class a, the patches from the
# comparison atlas, the network's answers shard by shard, then the table and figure.


rule attack_images:
    input:
        card=MODEL_FILES.card,
        dataset=dataset_input(),
        images=[ATTACKS["images"]] if ATTACKS["images"] else [],
    output:
        RUN_FILES.attack("{pair}", "images.json"),
    log:
        f"{LOGS}/attacks/{{pair}}/images.log",
    benchmark:
        f"{LOGS}/attacks/{{pair}}/images.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        seed=config["seed"],
        pair=lambda wildcards: ATTACK_PAIRS[wildcards.pair],
        source=ATTACK_SOURCE,
        # The atlas's images: read only to take the images of class a from, or to leave them out.
        atlas_images=image_selection() if ATTACK_SOURCE["kind"] != "other_split" else None,
        max_images=config["attacks"]["max_images"],
    script:
        "../scripts/attack_images.py"


rule attack_patches:
    input:
        cells=RUN_FILES.class_atlas("{pair}", "cells.h5"),
        icons=RUN_FILES.class_atlas("{pair}", "icons.h5"),
        layout=RUN_FILES.class_atlas("{pair}", "layout.h5"),
        activations=RUN_FILES.activations(CLASS_LAYER),
        card=MODEL_FILES.card,
        dataset=dataset_input(),
        # The pictures chosen for the pair, if any (attacks.pictures).
        pictures=lambda wildcards: [settings.picture_folder(config, wildcards.pair)] if ATTACKS["pictures"] else [],
    output:
        RUN_FILES.attack("{pair}", "patches.h5"),
    log:
        f"{LOGS}/attacks/{{pair}}/patches.log",
    benchmark:
        f"{LOGS}/attacks/{{pair}}/patches.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        seed=config["seed"],
        layer=CLASS_LAYER,
        pair=lambda wildcards: ATTACK_PAIRS[wildcards.pair],
        images=image_selection(),
        input_size=MODEL_INPUT_SIZE,
        resize=MODEL["resize"],
        attacks=ATTACK_PATCHES,
        pictures=lambda wildcards: settings.picture_folder(config, wildcards.pair),
    script:
        "../scripts/attack_patches.py"


rule attack_shard:
    input:
        images=RUN_FILES.attack("{pair}", "images.json"),
        patches=RUN_FILES.attack("{pair}", "patches.h5"),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        numerics=RUN_FILES.numerics,
    output:
        temp(RUN_FILES.attack_shard("{pair}", "{shard}")),
    log:
        f"{LOGS}/attacks/{{pair}}/shard{{shard}}.log",
    benchmark:
        f"{LOGS}/attacks/{{pair}}/shard{{shard}}.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=120),
    params:
        seed=config["seed"],
        device=config["device"],
        pair=lambda wildcards: ATTACK_PAIRS[wildcards.pair],
        shard=lambda wildcards: int(wildcards.shard),
        attacks=ATTACK_BATCHES,
        model=MODEL,
        input_size=MODEL_INPUT_SIZE,
    script:
        "../scripts/attack_shard.py"


rule attack_table:
    input:
        shards=expand(RUN_FILES.attack_shard("{{pair}}", "{shard}"), shard=range(config["attacks"]["shards"])),
        images=RUN_FILES.attack("{pair}", "images.json"),
        patches=RUN_FILES.attack("{pair}", "patches.h5"),
        card=MODEL_FILES.card,
    output:
        results=RUN_FILES.attack("{pair}", "results.h5"),
        table=report(
            RUN_FILES.attack("{pair}", "table.json"),
            caption="../report/attack_table.rst",
            category="Attacks",
            labels={"attack": "{pair}", "figure": "table"},
        ),
        figure=report(
            RUN_FILES.attack("{pair}", "figure.png"),
            caption="../report/attack_figure.rst",
            category="Attacks",
            labels={"attack": "{pair}", "figure": "patches and success rates"},
        ),
    log:
        f"{LOGS}/attacks/{{pair}}/table.log",
    benchmark:
        f"{LOGS}/attacks/{{pair}}/table.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        seed=config["seed"],
        pair=lambda wildcards: ATTACK_PAIRS[wildcards.pair],
        attacks=ATTACK_TABLE,
        input_size=MODEL_INPUT_SIZE,
        resize=MODEL["resize"],
    script:
        "../scripts/attack_table.py"
