if DATASET["kind"] == "generated":

    rule generate_dataset:
        output:
            directory(DATASET_DIR),
        log:
            f"logs/data/{DATASET['name']}/generate.log",
        benchmark:
            f"logs/data/{DATASET['name']}/generate.benchmark.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            seed=config["seed"],
            image_size=DATASET["image_size"],
            train_per_class=DATASET["train_per_class"],
            held_out_per_class=DATASET["held_out_per_class"],
        script:
            "../scripts/generate_dataset.py"


if DATASET["kind"] == "download":

    rule download_dataset:
        output:
            DATASET_ARCHIVE,
        log:
            f"logs/data/{DATASET['name']}/download.log",
        benchmark:
            f"logs/data/{DATASET['name']}/download.benchmark.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=120,
        params:
            url=DATASET["url"],
            sha256=DATASET["sha256"],
            pin=f"{DATASET_ARCHIVE}.sha256",
        script:
            "../scripts/download.py"

    rule unpack_dataset:
        input:
            DATASET_ARCHIVE,
        output:
            directory(DATASET_DIR),
        log:
            f"logs/data/{DATASET['name']}/unpack.log",
        benchmark:
            f"logs/data/{DATASET['name']}/unpack.benchmark.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        script:
            "../scripts/unpack_dataset.py"
