"""Stage render (rules/render.smk): feature inversion of the mean activation of every kept cell of a
grid (or of one chunk of them), and the chunks merged."""
from __future__ import annotations

from dataclasses import dataclass

from activation_atlas.extract import layer_key
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.cells import read_cells
from activation_atlas.formats.icons import merge_icon_chunks, write_icons
from activation_atlas.jobs import render_chunk_cells
from activation_atlas.models import layer_names, load_described_model
from activation_atlas.models.capture import resolve_layers
from activation_atlas.optvis.objectives import whitening_matrix
from activation_atlas.optvis.render import RenderSettings, render_icons as invert
from activation_atlas.runtime import configure_torch, resolve_device


@dataclass(frozen=True)
class Rendering:
    seed: int
    device: str
    layer: str
    grid_size: int
    chunk: int | None     # None: every kept cell
    render: dict          # the render section resolved for the layer
    render_config: dict   # the render section as configured, recorded in the icons file
    model: dict           # the model section


def render_icons(cells_path, activations_path, weights, model_card, icons_out, settings: Rendering,
                 threads: int, log) -> None:
    """Icons of the kept cells of one grid, or of chunk `chunk` of them (render.cells_per_job each)."""
    configure_torch(threads, settings.seed)
    device = resolve_device(settings.device)
    layer, grid_size = settings.layer, settings.grid_size
    cells = read_cells(cells_path)
    chosen = render_chunk_cells(settings.chunk, settings.render["cells_per_job"])
    rows, cols, means = cells.row[chosen], cells.col[chosen], cells.mean[chosen]
    model = load_described_model(settings.model, weights, model_card, device)
    module = resolve_layers(model, [layer], layer_names(model))
    whitening = None
    if settings.render["whiten"]:
        with ActivationFile(activations_path) as acts:
            whitening = whitening_matrix(acts.activations[:])
    icon_settings = RenderSettings.from_section(settings.render)
    log(f"rendering {len(rows)} of {len(cells.count)} icons of {layer} grid {grid_size} on {device}: "
        f"{icon_settings.icon_size} px, {icon_settings.steps} steps × {icon_settings.attempts} attempts, "
        f"batches of {icon_settings.batch_size}")
    keys = [(layer_key(layer), grid_size, int(r), int(c)) for r, c in zip(rows, cols)]
    icons = invert(model, module, means, keys, settings.seed, icon_settings, whitening, device, log)
    log(f"fidelity mean {icons.fidelity.mean():.3f}, min {icons.fidelity.min():.3f}")
    write_icons(icons_out, {"row": rows, "col": cols, "icons": icons.images, "objective": icons.objective,
                            "fidelity": icons.fidelity, "attempt": icons.attempt},
                layer=layer, grid_size=grid_size, seed=settings.seed, config={"render": settings.render_config})


def merge_icons(chunk_paths, icons_out, log) -> None:
    """One grid's icon chunks, concatenated in order (the same file for any number of chunks)."""
    n = merge_icon_chunks(chunk_paths, icons_out)
    log(f"merged {len(chunk_paths)} chunk(s): {n} icons in {icons_out}")
