rule train_model:
    input:
        dataset=DATASET_DIR,
    output:
        weights=f"{MODEL_DIR}/weights.pt",
        metrics=f"{MODEL_DIR}/metrics.json",
    params:
        seed=config["seed"],
        model=config["model"],
    log:
        log=f"logs/models/{config['model']['name']}/train.log",
        timing=f"logs/models/{config['model']['name']}/timing.json",
    benchmark:
        f"logs/models/{config['model']['name']}/train.benchmark.tsv"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=60),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train_model.py"
