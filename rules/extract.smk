rule extract:
    input:
        dataset=DATASET_DIR,
        weights=f"{MODEL_DIR}/weights.pt",
        metrics=f"{MODEL_DIR}/metrics.json",
    output:
        expand(f"{RESULTS}/activations/{{layer}}.h5", layer=LAYERS),
    params:
        seed=config["seed"],
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
