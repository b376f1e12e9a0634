"""The networks: the kinds a config can name (kinds/, a registry that imports no torch), building and
loading one (loading), the in-house networks (demo_cnn, demo_vit, inceptionv1), checkpoints, layer
capture, how a layer's output is read as a grid of vectors (grids), the names of its logits
(labels) and training."""
