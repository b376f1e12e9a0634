rule render_icons:
    input:
        cells=f"{RESULTS}/cells/{{layer}}/grid{{grid}}.h5",
        activations=f"{RESULTS}/activations/{{layer}}.h5",
        weights=MODEL_WEIGHTS,
        card=MODEL_CARD,
    output:
        f"{RESULTS}/icons/{{layer}}/grid{{grid}}.h5",
    params:
        seed=config["seed"],
        render=config["render"],
    log:
        f"{LOGS}/icons/{{layer}}/grid{{grid}}.log",
    benchmark:
        f"{LOGS}/icons/{{layer}}/grid{{grid}}.benchmark.tsv"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=240),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/render_icons.py"
