rule extract:
    input:
        dataset=dataset_input(),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        numerics=RUN_FILES.numerics,
    output:
        temp(expand(RUN_FILES.activation_shard("{{shard}}", "{layer}"), layer=LAYERS)),
    log:
        f"{LOGS}/extract/shard{{shard}}.log",
    benchmark:
        f"{LOGS}/extract/shard{{shard}}.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=8000, runtime=120),
    params:
        seed=config["seed"],
        device=config["device"],
        layers=LAYERS,
        shard=lambda wildcards: int(wildcards.shard),
        images=image_selection(),
        input_size=MODEL_INPUT_SIZE,
        dataset=DATASET,
        model=MODEL,
        extract=config["extract"],
        named_classes=NAMED_CLASSES,
    script:
        "../scripts/extract.py"


rule merge_activations:
    input:
        expand(
            RUN_FILES.activation_shard("{shard}", "{{layer}}"),
            shard=range(config["extract"]["shards"]),
        ),
    output:
        RUN_FILES.activations("{layer}"),
    log:
        f"{LOGS}/extract/merge_{{layer}}.log",
    benchmark:
        f"{LOGS}/extract/merge_{{layer}}.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/merge_activations.py"


rule evaluate_model:
    input:
        activations=RUN_FILES.activations(LAYERS[0]),
        card=MODEL_FILES.card,
    output:
        report(
            RUN_FILES.model_card, caption="../report/model_card.rst", category="Model", labels={"file": "model.json"}
        ),
    log:
        f"{LOGS}/extract/evaluate_model.log",
    benchmark:
        f"{LOGS}/extract/evaluate_model.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/evaluate_model.py"


# For an aligned atlas (rules/aligned.smk) that has this run as a member: one layer's activations at
# positions shared with the other member (every image read at the same place by both networks). The
# run's own rules never ask for it.
rule extract_shared:
    input:
        dataset=dataset_input(),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        numerics=RUN_FILES.numerics,
    output:
        RUN_FILES.shared_activations("{layer}"),
    log:
        f"{LOGS}/aligned/extract_{{layer}}.log",
    benchmark:
        f"{LOGS}/aligned/extract_{{layer}}.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=8000, runtime=120),
    params:
        seed=config["seed"],
        device=config["device"],
        layers=lambda wildcards: [wildcards.layer],
        shard=0,
        images=image_selection(),
        input_size=MODEL_INPUT_SIZE,
        dataset=DATASET,
        model=MODEL,
        extract={**config["extract"], "shards": 1, "shared_positions": True},
        named_classes=NAMED_CLASSES,
    script:
        "../scripts/extract.py"
