"""The Python API: the method on objects a researcher holds (a network, images), through the stage
functions the workflow's jobs call. Its public names are exported by the package (activation_atlas)."""
