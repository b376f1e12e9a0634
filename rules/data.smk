rule generate_dataset:
    output:
        directory(DATASET_DIR),
    params:
        seed=config["seed"],
        dataset=config["dataset"],
    log:
        f"logs/datasets/{config['dataset']['name']}.log",
    benchmark:
        f"logs/datasets/{config['dataset']['name']}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/generate_dataset.py"
