"""Stage dictionary (rules/dictionary.smk): a sparse dictionary learned on one layer's activations, and its
feature atlas: the atoms laid out by UMAP of their directions, one grid cell each, rendered and drawn by
the render and atlas stages' rules."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from activation_atlas.algorithms.atoms import atom_statistics, channel_statistics, top_purity, top_rows_along
from activation_atlas.algorithms.binning import agreement, distinct_cells, named_attributions
from activation_atlas.algorithms.dictionary import SaeEncoder, held_out_images, sae_settings, train_dictionary
from activation_atlas.algorithms.layout import lay_out, plot_layout
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import Cells, read_cells, read_top_class, write_cells
from activation_atlas.formats.dictionary import Dictionary, read_dictionary, write_dictionary
from activation_atlas.formats.icons import IconsFile
from activation_atlas.formats.layout import write_layout
from activation_atlas.formats.model_card import read_card
from activation_atlas.runtime import RunError, configure_torch, derive_seed, resolve_device, write_json

# Atoms fill about this share of the feature atlas's grid: room for the layout to keep its shape.
GRID_FILL = 0.6
CLASS_FEATURES = 5  # atoms listed per class in the metrics


@dataclass(frozen=True)
class DictionaryLearning:
    seed: int
    device: str
    layer: str
    dictionary: dict  # the dictionary section resolved for the layer (recorded in the file)


def learn_dictionary(activations_path, dictionary_out, settings: DictionaryLearning, threads: int, log) -> None:
    """Train the layer's dictionary on the activations of the images not held out, then encode every
    activation once for the atoms' statistics and the dictionary's quality."""
    configure_torch(threads, settings.seed, log)
    device = resolve_device(settings.device)
    layer, section = settings.layer, settings.dictionary
    with ActivationFile(activations_path) as acts:
        labels, classes = acts.labels, acts.classes
        held_out = held_out_images(
            acts.image_index, section["held_out"], derive_seed(settings.seed, "dictionary_held_out", layer)
        )
        sae = train_dictionary(
            acts.activations,
            ~held_out,
            sae_settings(section, acts.activations.shape[1], layer),
            derive_seed(settings.seed, "dictionary", layer),
            device,
            log,
        )
        encoder = SaeEncoder.of(sae, device)
        statistics, quality = atom_statistics(
            acts.activations,
            labels,
            len(classes),
            held_out,
            encoder,
            section["top_examples"],
            attribution=acts.attribution,
            attribution_class=acts.attribution_class,
            n_logits=acts.file["logits"].shape[1] if acts.attribution is not None else 0,
            dense_frequency=section["dense_frequency"],
            log=log,
        )
    log(
        f"{layer}: explained variance {quality.explained_variance:.4f} on {quality.held_out_activations} held-out "
        f"activations ({quality.explained_variance_train:.4f} on the training ones), mean L0 {quality.mean_l0:.2f}, "
        f"{quality.dead_atoms} dead and {quality.dense_atoms} dense of {len(sae.decoder)} atoms"
    )
    write_dictionary(
        dictionary_out,
        Dictionary(sae, statistics, quality, list(classes)),
        layer=layer,
        seed=settings.seed,
        config={"dictionary": section},
    )


@dataclass(frozen=True)
class FeatureLayout:
    seed: int
    layer: str
    umap: dict  # the atoms' UMAP settings: n_neighbors, min_dist, metric
    scatter_size: int
    samples_per_cell: int  # top-activating images kept per atom


def feature_cells(
    dictionary_path, activations_path, model_card, layout_out, scatter_out, cells_out, settings: FeatureLayout, log
) -> None:
    """The live atoms (those that fire) laid out by UMAP of their decoder directions, each given a cell of
    its own; a cell's vector is its atom's direction at the atom's mean activation."""
    layer = settings.layer
    dictionary = read_dictionary(dictionary_path)
    stats = dictionary.statistics
    live = np.flatnonzero(stats.fires > 0)
    if len(live) < 3:
        raise RunError(f"{layer}: only {len(live)} atoms of the dictionary fire: too few to lay out")
    umap = dict(settings.umap, n_neighbors=min(settings.umap["n_neighbors"], len(live) - 1))
    raw, xy = lay_out(dictionary.sae.decoder[live], umap, derive_seed(settings.seed, "feature_layout", layer), log)
    provenance = {"layer": layer, "seed": settings.seed}
    write_layout(layout_out, raw, xy, umap, **provenance)
    top_label = np.where(stats.class_histogram[live].sum(axis=1) > 0, stats.class_histogram[live].argmax(axis=1), -1)
    title = f"{layer}: {len(live)} atoms of {dictionary.atoms}, by the label they fire on most"
    plot_layout(xy, top_label, dictionary.classes, scatter_out, title, settings.scatter_size)
    grid_size, row, col = distinct_cells(xy, GRID_FILL)
    order = np.lexsort((col, row))
    atoms = live[order]
    log(f"{len(atoms)} atoms on a {grid_size}×{grid_size} grid")
    with ActivationFile(activations_path) as acts:
        image_index = acts.image_index
        position, spatial_size = acts.read_positions(slice(None))
    cells = Cells(
        grid_size=grid_size,
        row=row[order].astype(np.int32),
        col=col[order].astype(np.int32),
        count=stats.fires[atoms],
        mean=dictionary.sae.decoder[atoms] * stats.mean_activation[atoms, None],
        class_histogram=stats.class_histogram[atoms],
        points_total=len(image_index),
    )
    samples, rows = top_images(stats.top_rows[atoms], image_index, settings.samples_per_cell)
    logit_names = read_card(model_card)["classes"]
    attributions = named_attributions(stats.attribution[atoms], logit_names) if stats.attribution is not None else None
    write_cells(
        cells_out,
        cells,
        samples,
        attributions,
        0,
        atoms=atoms.astype(np.int32),
        sample_positions=sample_positions(rows, position, spatial_size),
        classes=dictionary.classes,
        config={"dictionary": {"layout": settings.umap}},
        **provenance,
    )


def top_images(top_rows: np.ndarray, image_index: np.ndarray, per_atom: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, per_atom) distinct images of each atom's top-activating rows, strongest first, and the row of
    each (its strongest activation in that image); −1 pads."""
    samples = np.full((len(top_rows), per_atom), -1, dtype=np.int64)
    rows_of_samples = np.full((len(top_rows), per_atom), -1, dtype=np.int64)
    for k, rows in enumerate(top_rows):
        rows = rows[rows >= 0]
        _, first = np.unique(image_index[rows], return_index=True)
        chosen = rows[np.sort(first)][:per_atom]
        samples[k, : len(chosen)], rows_of_samples[k, : len(chosen)] = image_index[chosen], chosen
    return samples, rows_of_samples


def sample_positions(rows: np.ndarray, position: np.ndarray, spatial_size) -> np.ndarray:
    """(A, S, 4) int32: each sample row's (row, col) in the layer's map and the map's (H, W); −1 pads."""
    out = np.full((*rows.shape, 4), -1, dtype=np.int32)
    known = rows >= 0
    out[known, :2] = position[rows[known]]
    out[known, 2:] = spatial_size
    return out


@dataclass(frozen=True)
class NeuronCells:
    seed: int
    layer: str
    samples_per_cell: int  # top-activating images kept per channel


def neuron_cells(activations_path, cells_out, settings: NeuronCells, log) -> None:
    """The layer's channels as cells of a grid, in channel order, to be rendered like atoms: a cell's
    vector is its channel's unit direction at the channel's mean positive activation."""
    with ActivationFile(activations_path) as acts:
        labels, classes, image_index = acts.labels, acts.classes, acts.image_index
        fires, mean, histogram, top_rows = channel_statistics(
            acts.activations, labels, len(classes), settings.samples_per_cell * 4
        )
    channels = len(fires)
    grid_size = int(np.ceil(np.sqrt(channels)))
    log(f"{channels} channels on a {grid_size}×{grid_size} grid; {int((fires == 0).sum())} never positive")
    cells = Cells(
        grid_size=grid_size,
        row=(np.arange(channels) // grid_size).astype(np.int32),
        col=(np.arange(channels) % grid_size).astype(np.int32),
        count=fires,
        mean=np.diag(mean).astype(np.float32),
        class_histogram=histogram,
        points_total=len(image_index),
    )
    samples, _ = top_images(top_rows, image_index, settings.samples_per_cell)
    provenance = {"classes": classes, "config": {"dictionary": {"neurons": True}}}
    write_cells(cells_out, cells, samples, None, 0, layer=settings.layer, seed=settings.seed, **provenance)


@dataclass(frozen=True)
class FeatureMetrics:
    layer: str
    grids: list[int]  # the layer's atlas grids: their cells are compared with the atoms and the neurons


@dataclass(frozen=True)
class MetricsInputs:
    card: str
    dictionary: str
    activations: str
    cells: str  # the feature atlas's
    icons: str
    neuron_icons: str  # the channels' icons
    layer_cells: list  # the layer's atlas, one per grid of settings.grids
    layer_icons: list


def feature_metrics(files: MetricsInputs, metrics_out, settings: FeatureMetrics, log) -> None:
    """The dictionary's quality and its feature atlas's figures: atoms alive, how often they fire, the
    class purity of their top-activating activations, their icons' fidelity and class agreement; and
    the same purity and fidelity of the layer's other units, its neurons and its atlas's cells."""
    dictionary = read_dictionary(files.dictionary)
    stats, quality = dictionary.statistics, dictionary.quality
    with ActivationFile(files.activations) as acts:
        labels = acts.labels
        units = compared_units(acts.activations, dictionary, files, settings.grids, log)
    live = stats.fires > 0
    logit_names = read_card(files.card)["classes"]
    icon_class_of_atom, chosen_by = read_top_class(files.cells, logit_names)
    with IconsFile(files.icons) as icons:
        fidelity, icon_class = icons.fidelity, icons.icon_class
    figures = {name: unit_figures(rows, icons, labels) for name, (rows, icons) in units.items()}
    result = {
        "layer": settings.layer,
        "atoms": dictionary.atoms,
        "channels": int(dictionary.sae.decoder.shape[1]),
        "top_k": dictionary.sae.top_k,
        **asdict(quality),
        "live_atoms": int(live.sum()),
        "mean_atom_frequency": round(float(stats.frequency[live].mean()), 6),
        "mean_atom_class_purity": figures["atoms"]["mean_top_class_purity"],
        "mean_icon_fidelity": figures["atoms"]["mean_icon_fidelity"],
        "min_icon_fidelity": round(float(fidelity.min()), 6),
        "atom_top_class_by": chosen_by,
        "class_agreement": agreement(icon_class, icon_class_of_atom, np.ones(len(icon_class), bool)),
        "final_loss": round(dictionary.sae.loss_per_epoch[-1], 6),
        "units": figures,
    }
    if stats.attribution is not None:
        result["class_features"] = class_features(stats.attribution, np.flatnonzero(live), logit_names)
    log(json.dumps(result, indent=2))
    write_json(metrics_out, result)


def compared_units(activations, dictionary: Dictionary, files: MetricsInputs, grids: list[int], log) -> dict:
    """Per kind of unit, each unit's top-activating rows (as many as the atoms keep) and its icons file:
    the neurons (by their activation), the cells of each grid (by projection on their mean's direction)
    and the live atoms (by their code)."""
    n = dictionary.statistics.top_rows.shape[1]
    units = {"neurons": (top_rows_along(activations, None, n), files.neuron_icons)}
    for grid, cells_path, icons_path in zip(grids, files.layer_cells, files.layer_icons):
        mean = read_cells(cells_path).mean
        directions = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        units[f"cells_grid{grid}"] = (top_rows_along(activations, directions.astype(np.float32), n), icons_path)
        log(f"top rows of the {len(mean)} cells of grid {grid}")
    live = dictionary.statistics.fires > 0
    units["atoms"] = (dictionary.statistics.top_rows[live], files.icons)
    return units


def unit_figures(top_rows: np.ndarray, icons_path, labels: np.ndarray) -> dict:
    with IconsFile(icons_path) as icons:
        fidelity = icons.fidelity
    return {
        "units": int(len(top_rows)),
        "top_activations": int(top_rows.shape[1]),
        "mean_top_class_purity": mean_or_none(top_purity(top_rows, labels)),
        "mean_icon_fidelity": round(float(fidelity.mean()), 6),
    }


def class_features(attribution: np.ndarray, atoms: np.ndarray, logit_names: list[str], top: int = CLASS_FEATURES):
    """Per class, the atoms (of `atoms`) most attributed to it, as [atom, attribution], strongest first;
    only atoms with a positive attribution."""
    listed = {}
    for k, name in enumerate(logit_names):
        values = attribution[atoms, k]
        order = np.argsort(-values, kind="stable")[:top]
        listed[name] = [[int(atoms[i]), round(float(values[i]), 6)] for i in order if values[i] > 0]
    return listed


def mean_or_none(values: np.ndarray) -> float | None:
    """The mean of the finite values, rounded; None where there are none."""
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), 6) if len(finite) else None
