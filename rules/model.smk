if MODEL["kind"] == "demo_cnn":

    rule train_model:
        input:
            dataset=DATASET_DIR,
            numerics=NUMERICS,
        output:
            weights=f"{MODEL_DIR}/weights.pt",
            card=MODEL_CARD,
        params:
            seed=config["seed"],
            image_size=DATASET["image_size"],
            model=MODEL,
        log:
            log=f"logs/model/{MODEL['name']}/train.log",
            timing=f"logs/model/{MODEL['name']}/timing.json",
        benchmark:
            f"logs/model/{MODEL['name']}/train.benchmark.tsv"
        threads: config["threads"]
        resources:
            **torch_resources(mem_mb=6000, runtime=60),
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/train_model.py"

else:

    if MODEL["url"]:

        rule download_weights:
            output:
                f"{MODEL_DIR}/weights.pt",
            params:
                url=MODEL["url"],
                sha256=MODEL["sha256"],
                pin=f"{MODEL_DIR}/weights.pt.sha256",
            log:
                f"logs/model/{MODEL['name']}/download.log",
            benchmark:
                f"logs/model/{MODEL['name']}/download.benchmark.tsv"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=60,
            conda:
                "../envs/torch.yaml"
            script:
                "../scripts/download.py"

    rule describe_model:
        input:
            weights=MODEL_WEIGHTS,
            dataset=dataset_input(),
        output:
            MODEL_CARD,
        params:
            model=MODEL,
            layers=LAYERS,
            input_size=MODEL_INPUT_SIZE,
            images=image_selection(),
        log:
            f"logs/model/{MODEL['name']}/describe.log",
        benchmark:
            f"logs/model/{MODEL['name']}/describe.benchmark.tsv"
        threads: 1
        resources:
            **torch_resources(mem_mb=4000, runtime=30),
        conda:
            "../envs/torch.yaml"
        script:
            "../scripts/describe_model.py"
