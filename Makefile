# `make demo`: install into .venv and run the default (offline) workflow.
# `make test`: install into .venv and run the test suite; `make test SLURM=1` also runs the tests on a
# real single-node SLURM cluster, in the same session (they compare the cluster's outputs with its
# local run). `make test-unit`: the tests that run no Snakemake (1.5 minutes on 2 cores).
# `make test-slow`: the slow tests, left out of `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Keeps torch's per-batch buffers mapped (see Snakefile); also applied to the tests.
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 68719476736

# make report / make verify act on the run of CONFIG (default: the default run).
CONFIG ?= config.yaml
RUN = $(shell $(BIN)/python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get('run', 'demo'))" $(CONFIG))
REFERENCE ?= reference/$(RUN)/MANIFEST.json

.PHONY: install browser demo test test-unit test-slow report verify reference kernels docs benchmark lint

install: $(VENV)/.installed

# Every package at the version and hashes of requirements.lock (compiled from requirements.txt:
# python -m tools.lock compile), then the package itself, editable, built with the locked setuptools;
# then umap-learn's numba kernels compiled once into their on-disk cache.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m tools.warm_numba_cache
	touch $@

# Chromium for the viewer's browser test: installed as root when missing, else the command to run.
browser:
	tools/browser.sh

demo: install
	$(BIN)/snakemake --cores all

# The run's figures, metrics, model card, provenance and configuration in one file.
report: install
	$(BIN)/snakemake --configfile $(CONFIG) --report results/$(RUN)/report.zip

# Makes (or completes) the run, then checks it against the committed reference manifest.
verify: install
	$(BIN)/snakemake --configfile $(CONFIG) --cores all
	$(BIN)/python -m activation_atlas.checking.verify results/$(RUN) $(REFERENCE)

# The reference of CONFIG's run: its manifest, and the spread of its figures over SEEDS seeds (the
# config's own seed and the next ones, each run as a run of its own): reference/<run>/. With
# PORTABLE=1, one run with portable kernels: reference/<run>-portable/MANIFEST.json.
SEEDS ?= 5
reference: install
	$(BIN)/python -m tools.make_reference $(CONFIG) $(if $(PORTABLE),--portable,--seeds $(SEEDS))

# This CPU's bits of the operations a portable run uses (tools/kernel_probe.py) against those of the
# machine that made reference/ci-portable: names the operations that differ (exit 1), if any.
kernels: install
	$(BIN)/python -m tools.kernel_probe logs/kernel-probe.json
	$(BIN)/python -m tools.kernel_probe --compare logs/kernel-probe.json reference/ci-portable/KERNELS.json

# Every image under docs/ made again from the runs it shows (docs/sources.yaml): the default run,
# config/cifar10-resnet32.yaml offline (its committed checkpoint instead of the URL), the demo ViT and
# the aligned atlas of the two; then the tables of figures in docs/*.md, from the reference manifests.
RESNET32_OFFLINE = model={url: "", checkpoint: tests/data/cifar10-resnet32/resnet32-d509ac18.th}
docs: install browser demo
	$(BIN)/snakemake --configfile config/cifar10-resnet32.yaml --config '$(RESNET32_OFFLINE)' --cores all
	$(BIN)/snakemake --configfile config/demo-vit.yaml --cores all
	$(BIN)/snakemake --configfile config/aligned-demo.yaml --cores all
	$(BIN)/python -m tools.docs_images
	$(BIN)/python -m tools.docs_tables

# The SLURM cluster is started on this machine and stopped afterwards (root, Debian's slurm-wlm,
# slurmdbd, munge and mariadb-server: tools/slurm_cluster.sh install).
test: install browser
ifeq ($(SLURM),1)
	tools/slurm_cluster.sh start
	$(BIN)/python -m pytest -q --durations=20 tests; status=$$?; tools/slurm_cluster.sh stop; exit $$status
else
	$(BIN)/python -m pytest -q --durations=20 tests --ignore=tests/slurm
endif

# The fast loop: every test that does not run Snakemake, spread over the cores (pytest-xdist).
test-unit: install
	$(BIN)/python -m pytest -q -n auto --durations=10 -m "not slow and not workflow and not notebook" tests --ignore=tests/slurm

# The slow tests (minutes each, left out of `make test`): a run killed in every rule and resumed, and
# accepted config mutations run for real.
test-slow: install
	$(BIN)/python -m pytest -q -m slow tests

# The style and lint rules in pyproject.toml (ruff for Python, snakefmt for the Snakefile and rules/),
# then Snakemake's own lint of the workflow.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

# The performance figures of the default run (docs/measurements/run_benchmarks.json), then the tables
# of docs/*.md made again from the kept measurements.
benchmark: install demo
	$(BIN)/python -m benchmarks.run_benchmarks --inceptionv1
	$(BIN)/python -m tools.docs_tables
