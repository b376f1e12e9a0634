if DATASET["kind"] == "generated":

    rule generate_dataset:
        output:
            directory(DATASET_DIR),
        params:
            seed=config["seed"],
            dataset=DATASET,
        log:
            f"logs/datasets/{DATASET['name']}.log",
        benchmark:
            f"logs/datasets/{DATASET['name']}.benchmark.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/generate_dataset.py"


if DATASET["kind"] == "download":

    rule download_dataset:
        output:
            DATASET_ARCHIVE,
        params:
            url=DATASET["url"],
            sha256=DATASET["sha256"],
            pin=f"{DATASET_ARCHIVE}.sha256",
        log:
            f"logs/datasets/{DATASET['name']}.download.log",
        benchmark:
            f"logs/datasets/{DATASET['name']}.download.benchmark.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=120,
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/download.py"

    rule unpack_dataset:
        input:
            DATASET_ARCHIVE,
        output:
            directory(DATASET_DIR),
        log:
            f"logs/datasets/{DATASET['name']}.unpack.log",
        benchmark:
            f"logs/datasets/{DATASET['name']}.unpack.benchmark.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/unpack_dataset.py"
