"""Programs that serve the tests and the Makefile, not the workflow: the shared helpers for running
the workflow in a fresh copy (runs), a config fuzzer, a kill-and-resume driver, a local HTTP server
for download tests, Chromium's and a single-node SLURM cluster's installers."""
