"""Performance and quality measurements of the workflow's stages (not part of the test suite). Each
module runs from the repository root as `python -m benchmarks.<name>` and writes its figures as JSON."""
