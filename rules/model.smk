if MODEL_TRAINED:

    rule train_model:
        input:
            dataset=DATASET_DIR,
            numerics=RUN_FILES.numerics,
        output:
            weights=MODEL_FILES.weights,
            training=MODEL_FILES.training,
        log:
            log=f"logs/model/{MODEL['name']}/train.log",
            timing=f"logs/model/{MODEL['name']}/timing.json",
        benchmark:
            f"logs/model/{MODEL['name']}/train.benchmark.tsv"
        conda:
            "../envs/torch.yaml"
        threads: config["threads"]
        resources:
            **torch_resources(mem_mb=6000, runtime=60),
        params:
            seed=config["seed"],
            input_size=MODEL_INPUT_SIZE,
            model=MODEL,
        script:
            "../scripts/train_model.py"

elif MODEL["url"]:

    rule download_weights:
        output:
            MODEL_FILES.weights,
        log:
            f"logs/model/{MODEL['name']}/download.log",
        benchmark:
            f"logs/model/{MODEL['name']}/download.benchmark.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        params:
            url=MODEL["url"],
            sha256=MODEL["sha256"],
            pin=MODEL_FILES.weights_pin,
        script:
            "../scripts/download.py"


# A trained model's classes come from its training; another's from the dataset's class folders.
rule describe_model:
    input:
        weights=MODEL_WEIGHTS,
        training=[MODEL_FILES.training] if MODEL_TRAINED else [],
        dataset=[] if MODEL_TRAINED else dataset_input(),
    output:
        MODEL_FILES.card,
    log:
        f"logs/model/{MODEL['name']}/describe.log",
    benchmark:
        f"logs/model/{MODEL['name']}/describe.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        **torch_resources(mem_mb=4000, runtime=30),
    params:
        model=MODEL,
        layers=LAYERS,
        input_size=MODEL_INPUT_SIZE,
        images=None if MODEL_TRAINED else image_selection(),
    script:
        "../scripts/describe_model.py"
