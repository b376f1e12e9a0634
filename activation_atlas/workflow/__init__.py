"""Workflow plumbing, run while Snakemake builds its graph (and so importing no torch): the config's
schema and checks, the settings each rule's params resolve, the results/resources path layout, how
work is split into jobs, the run lock, provenance, and the aligned workflow's config and outputs."""
