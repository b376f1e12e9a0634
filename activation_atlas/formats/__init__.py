"""The workflow's file formats, one module each: every read and write of a format goes through its
module, which declares the format's datasets (or keys) and attributes once.

activations  results/<run>/activations/<layer>.h5     per activation: vector, image, position, label, logits
layout       results/<run>/layout/<layer>.h5          per activation: its UMAP coordinates
cells        results/<run>/cells/<layer>/grid<G>.h5   per kept grid cell: mean vector, counts, samples
icons        results/<run>/icons/<layer>/grid<G>.h5   per kept grid cell: its rendered icon
model_card   resources/models/<name>/model.json       the model's classes, layers and accuracy
"""
