# `make demo`: install into .venv and run the default (offline) workflow.
# `make test`: install into .venv and run the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Keeps torch's per-batch buffers mapped (see Snakefile); also applied to the tests.
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 68719476736

.PHONY: install demo test test-slurm benchmark lint

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

demo: install
	$(BIN)/snakemake --cores all

test: install
	$(BIN)/python -m pytest -q tests --ignore=tests/slurm

# The workflow on a real single-node SLURM cluster started on this machine (root, Debian's slurm-wlm,
# slurmdbd, munge and mariadb-server: tests/slurm/cluster.sh install).
test-slurm: install
	tests/slurm/cluster.sh start
	$(BIN)/python -m pytest -q tests/slurm; status=$$?; tests/slurm/cluster.sh stop; exit $$status

lint: install
	$(BIN)/snakemake --lint

benchmark: install demo
	$(BIN)/python benchmarks/run_benchmarks.py
