"""The method of activation atlases, torch-free where it can be: extraction and attribution, the UMAP
layout, grid binning, class atlases, aligned rows and montages. Stages call these; they never read
the config."""
