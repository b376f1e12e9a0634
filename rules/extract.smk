rule extract:
    input:
        dataset=dataset_input(),
        weights=MODEL_WEIGHTS,
        card=MODEL_CARD,
    output:
        expand(f"{RESULTS}/activations/{{layer}}.h5", layer=LAYERS),
    params:
        seed=config["seed"],
        images=images_dir(),
        dataset=DATASET,
        model=MODEL,
        extract=config["extract"],
        layers=LAYERS,
    log:
        f"{LOGS}/extract.log",
    benchmark:
        f"{LOGS}/extract.benchmark.tsv"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=8000, runtime=120),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/extract.py"
