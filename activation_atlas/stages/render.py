"""Stage render (rules/render.smk): feature inversion of the mean activation of every kept cell of a
grid (or of one chunk of them), and the chunks merged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from activation_atlas.algorithms.extract import layer_key
from activation_atlas.data.image_folder import ImageSelection, select_images
from activation_atlas.data.sources import FolderImages
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import read_cells
from activation_atlas.formats.icons import merge_icon_chunks, write_icons
from activation_atlas.formats.model_card import read_card
from activation_atlas.formats.spectrum import read_spectrum, write_spectrum
from activation_atlas.models.capture import forward_to_layers, layer_names, resolve_layers
from activation_atlas.models.folding import fold_batch_norms
from activation_atlas.models.grids import card_layer_grid
from activation_atlas.models.loading import as_the_model_sees, load_described_model
from activation_atlas.optvis.objectives import whitening_matrix
from activation_atlas.optvis.param import amplitude_spectra
from activation_atlas.optvis.render import RenderSettings, classify_icons
from activation_atlas.optvis.render import render_icons as invert
from activation_atlas.runtime import RunError, configure_torch, derive_seed, resolve_device
from activation_atlas.workflow.jobs import render_chunk_cells


@dataclass(frozen=True)
class Rendering:
    seed: int
    device: str
    layer: str
    grid_size: int | None  # None: the cells file's (a feature atlas's grid follows from its atoms)
    chunk: int | None  # None: every kept cell
    render: dict  # the render section resolved for the layer
    render_config: dict  # the render section as configured, recorded in the icons file
    model: dict  # the model section
    input_size: int  # side of the images the model is fed (icons are classified at it)


@dataclass
class RenderTarget:
    """What inverting the mean activations of one layer's cells needs: the model and the layer's module,
    how the layer is read as a grid, the cells, their keys (each icon's seed) and the whitening matrix."""

    model: torch.nn.Module
    module: dict
    grid: object  # the layer's LayerGrid (model card)
    card: dict
    cells: object  # the cells file's contents (formats.cells.read_cells)
    keys: np.ndarray  # (layer key, grid size, row, col) of every cell
    grid_size: int
    whitening: np.ndarray | None  # from the layer's activations, when asked for


def prepare_render(
    cells_path,
    activations_path,
    model,
    card: dict,
    layer: str,
    grid_size: int | None,
    whiten: bool,
    device: str,
    input_size: int,
    log,
) -> RenderTarget:
    """The loaded model with its batch norms folded, the layer's module and grid, the cells and (whiten)
    the whitening matrix of the layer's activations; grid_size None: the cells file's."""
    cells = read_cells(cells_path)
    grid_size = cells.grid_size if grid_size is None else grid_size
    probe = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)).to(device)
    model = fold_batch_norms(model, [layer], probe, log)
    module = resolve_layers(model, [layer], layer_names(model))
    whitening = None
    if whiten:
        with ActivationFile(activations_path) as acts:
            whitening = whitening_matrix(acts.activations[:])
    keys = np.array([(layer_key(layer), grid_size, int(r), int(c)) for r, c in zip(cells.row, cells.col)])
    return RenderTarget(
        model=model,
        module=module,
        grid=card_layer_grid(card, layer),
        card=card,
        cells=cells,
        keys=keys,
        grid_size=grid_size,
        whitening=whitening,
    )


def render_icons(
    cells_path, activations_path, weights, model_card, spectrum_path, icons_out, settings: Rendering, threads: int, log
) -> None:
    """Icons of the kept cells of one grid, or of chunk `chunk` of them (render.cells_per_job each);
    spectrum_path: the amplitude spectrum at the icon size (render.param maco), else None."""
    configure_torch(threads, settings.seed, log)
    device = resolve_device(settings.device)
    card = read_card(model_card)
    model = load_described_model(settings.model, weights, card, device)
    render_cells(model, card, cells_path, activations_path, spectrum_path, icons_out, settings, device, log)


def render_cells(
    model, card: dict, cells_path, activations_path, spectrum_path, icons_out, settings: Rendering, device: str, log
) -> None:
    """render_icons, of a loaded model (taking [0, 1] RGB, on `device`) and its card."""
    layer = settings.layer
    target = prepare_render(
        cells_path,
        activations_path,
        model,
        card,
        layer,
        settings.grid_size,
        settings.render["whiten"],
        device,
        settings.input_size,
        log,
    )
    model, module, cells, grid_size = target.model, target.module, target.cells, target.grid_size
    check_icon_size(model, module, settings.render["icon_size"], settings.input_size, device)
    chosen = render_chunk_cells(settings.chunk, settings.render["cells_per_job"])
    rows, cols, means = cells.row[chosen], cells.col[chosen], cells.mean[chosen]
    icon_settings = RenderSettings.from_section(settings.render)
    log(
        f"rendering {len(rows)} of {len(cells.count)} icons of {layer} grid {grid_size} on {device}: "
        f"{icon_settings.icon_size} px, {icon_settings.param} parameterisation, {icon_settings.steps} steps × "
        f"{icon_settings.attempts} attempts, batches of {icon_settings.batch_size}"
    )
    keys = [tuple(int(v) for v in key) for key in target.keys[chosen]]
    amplitude = read_spectrum(spectrum_path) if spectrum_path else None
    icons = invert(
        model, module, means, keys, settings.seed, icon_settings, target.whitening, device, log, amplitude, target.grid
    )
    icons.images = as_the_model_sees(icons.images, settings.model)
    log(f"fidelity mean {icons.fidelity.mean():.3f}, min {icons.fidelity.min():.3f}")
    icon_class = classify_icons(model, icons.images, settings.input_size, icon_settings.batch_size, device)
    data = {
        "row": rows,
        "col": cols,
        "icons": icons.images,
        "objective": icons.objective,
        "fidelity": icons.fidelity,
        "attempt": icons.attempt,
        "icon_class": icon_class,
    }
    if icon_settings.stop is not None:
        budget = len(rows) * icon_settings.steps * icon_settings.attempts
        log(f"optimisation steps: {icons.steps.sum()} of {budget} ({icons.steps.sum() / max(budget, 1):.0%})")
        data["steps"] = icons.steps
    write_icons(
        icons_out, data, layer=layer, grid_size=grid_size, seed=settings.seed, config={"render": settings.render_config}
    )


def check_icon_size(model, module, icon_size: int, input_size: int, device: str) -> None:
    """Icons are optimised at their own size: a model made for one input size (a ViT) needs icons of it."""
    if icon_size == input_size:
        return
    try:
        forward_to_layers(model, module, torch.zeros(1, 3, icon_size, icon_size, device=device))
    except Exception as error:  # the model's own check, said with what to do
        raise RunError(
            f"render.icon_size = {icon_size}: the model does not take {icon_size} px images "
            f"({type(error).__name__}: {error}); set render.icon_size to its input size, "
            f"{input_size}"
        ) from None


def merge_icons(chunk_paths, icons_out, log) -> None:
    """One grid's icon chunks, concatenated in order (the same file for any number of chunks)."""
    n = merge_icon_chunks(chunk_paths, icons_out)
    log(f"merged {len(chunk_paths)} chunk(s): {n} icons in {icons_out}")


@dataclass(frozen=True)
class Spectrum:
    seed: int
    icon_size: int
    images: dict  # an ImageSelection
    resize: str  # the model section's resize policy
    on_unreadable: str
    spectrum_images: int  # at most this many images, a seeded sample


def amplitude_spectrum(spectrum_out, settings: Spectrum, log, batch_size: int = 256) -> None:
    """The mean amplitude spectrum of (a seeded sample of) the run's images at the icon size."""
    folder = select_images(ImageSelection(**settings.images), settings.seed, log)
    source = FolderImages(folder, settings.resize, settings.on_unreadable)
    spectrum_of(source, settings.images["folder"], spectrum_out, settings, log, batch_size)


def spectrum_of(source, where: str, spectrum_out, settings: Spectrum, log, batch_size: int = 256) -> None:
    """amplitude_spectrum of an image source (data/sources.py; settings.images is not read); `where`
    names the images in an error."""
    rng = np.random.default_rng(derive_seed(settings.seed, "spectrum", settings.icon_size))
    chosen = np.sort(rng.permutation(len(source))[: settings.spectrum_images])
    total, count = None, 0
    for first in range(0, len(chosen), batch_size):
        read = source.read(chosen[first : first + batch_size], settings.icon_size, log)
        if len(read.kept):
            part = amplitude_spectra(read.images).sum(dim=0)
            total = part if total is None else total + part
            count += len(read.kept)
        log(f"{min(first + batch_size, len(chosen))}/{len(chosen)} images")
    if not count:
        raise RunError(f"no readable image in {where} for the amplitude spectrum")
    write_spectrum(
        spectrum_out,
        (total / count).float().numpy(),
        icon_size=settings.icon_size,
        images=count,
        seed=settings.seed,
        config={"render": {"spectrum_images": settings.spectrum_images}},
    )
    log(f"mean amplitude spectrum of {count} images at {settings.icon_size} px written")
