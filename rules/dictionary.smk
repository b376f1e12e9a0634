# Sparse dictionaries (dictionary.layers): a TopK sparse autoencoder learned on a layer's activations,
# then its feature atlas, laid out here and rendered and drawn by the render_icons and montage rules
# with its paths.


rule learn_dictionary:
    input:
        RUN_FILES.activations("{layer}"),
    output:
        RUN_FILES.dictionary("{layer}", "dictionary.h5"),
    log:
        f"{LOGS}/dictionary/{{layer}}/learn.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/learn.benchmark.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        **torch_resources(mem_mb=6000, runtime=240),
    params:
        seed=config["seed"],
        device=config["device"],
        layer=lambda wildcards: wildcards.layer,
        dictionary=lambda wildcards: settings.dictionary_learning(config, wildcards.layer),
    script:
        "../scripts/learn_dictionary.py"


rule feature_cells:
    input:
        dictionary=RUN_FILES.dictionary("{layer}", "dictionary.h5"),
        activations=RUN_FILES.activations("{layer}"),
        card=MODEL_FILES.card,
    output:
        layout=RUN_FILES.dictionary("{layer}", "layout.h5"),
        scatter=report(
            RUN_FILES.dictionary("{layer}", "layout.png"),
            caption="../report/feature_layout.rst",
            category="Dictionaries",
            labels={"layer": "{layer}", "figure": "layout of the atoms"},
        ),
        cells=RUN_FILES.dictionary("{layer}", "cells.h5"),
    log:
        f"{LOGS}/dictionary/{{layer}}/cells.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/cells.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        umap=settings.feature_layout(config),
        scatter_size=config["layout"]["scatter_size"],
        samples_per_cell=config["grid"]["samples_per_cell"],
    script:
        "../scripts/feature_cells.py"


use rule render_icons as feature_icons with:
    input:
        cells=RUN_FILES.dictionary("{layer}", "cells.h5"),
        activations=RUN_FILES.activations("{layer}"),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        spectrum=lambda wildcards: spectrum_input(wildcards.layer),
    output:
        RUN_FILES.dictionary("{layer}", "icons.h5"),
    log:
        f"{LOGS}/dictionary/{{layer}}/icons.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/icons.benchmark.tsv"
    params:
        # The feature atlas's grid follows from its atoms: the cells file says it.
        grid_size=None,
        chunk=None,


use rule montage as feature_montage with:
    input:
        icons=RUN_FILES.dictionary("{layer}", "icons.h5"),
        cells=RUN_FILES.dictionary("{layer}", "cells.h5"),
    output:
        atlas=report(
            RUN_FILES.dictionary("{layer}", "atlas.png"),
            caption="../report/feature_atlas.rst",
            category="Dictionaries",
            labels={"layer": "{layer}", "figure": "feature atlas"},
        ),
        tiles=directory(RUN_FILES.dictionary("{layer}", "tiles")),
    log:
        f"{LOGS}/dictionary/{{layer}}/montage.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/montage.benchmark.tsv"


rule neuron_cells:
    input:
        RUN_FILES.activations("{layer}"),
    output:
        RUN_FILES.dictionary("{layer}", "neurons.h5"),
    log:
        f"{LOGS}/dictionary/{{layer}}/neurons.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/neurons.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        seed=config["seed"],
        layer=lambda wildcards: wildcards.layer,
        samples_per_cell=config["grid"]["samples_per_cell"],
    script:
        "../scripts/neuron_cells.py"


use rule render_icons as neuron_icons with:
    input:
        cells=RUN_FILES.dictionary("{layer}", "neurons.h5"),
        activations=RUN_FILES.activations("{layer}"),
        weights=MODEL_WEIGHTS,
        card=MODEL_FILES.card,
        spectrum=lambda wildcards: spectrum_input(wildcards.layer),
    output:
        RUN_FILES.dictionary("{layer}", "neuron_icons.h5"),
    log:
        f"{LOGS}/dictionary/{{layer}}/neuron_icons.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/neuron_icons.benchmark.tsv"
    params:
        grid_size=None,
        chunk=None,


rule feature_metrics:
    input:
        card=RUN_FILES.model_card,
        dictionary=RUN_FILES.dictionary("{layer}", "dictionary.h5"),
        activations=RUN_FILES.activations("{layer}"),
        cells=RUN_FILES.dictionary("{layer}", "cells.h5"),
        icons=RUN_FILES.dictionary("{layer}", "icons.h5"),
        neuron_icons=RUN_FILES.dictionary("{layer}", "neuron_icons.h5"),
        layer_cells=expand(RUN_FILES.cells("{{layer}}", "{grid}"), grid=GRIDS),
        layer_icons=expand(RUN_FILES.icons("{{layer}}", "{grid}"), grid=GRIDS),
    output:
        report(
            RUN_FILES.dictionary("{layer}", "metrics.json"),
            caption="../report/feature_metrics.rst",
            category="Dictionaries",
            labels={"layer": "{layer}", "figure": "metrics"},
        ),
    log:
        f"{LOGS}/dictionary/{{layer}}/metrics.log",
    benchmark:
        f"{LOGS}/dictionary/{{layer}}/metrics.benchmark.tsv"
    conda:
        "../envs/layout.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        layer=lambda wildcards: wildcards.layer,
        grids=GRIDS,
    script:
        "../scripts/feature_metrics.py"
