"""The method, step by step, on objects a researcher holds: extract activations; lay them out, bin
them, render each cell's mean and draw the atlas (class atlases: api/class_atlas.py); the viewer over
them. Each step is the stage function a workflow job calls, writing the workflow's files into the
result's run folder, so a call writes the bytes a run of the same settings writes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from activation_atlas.api import results
from activation_atlas.api.config import checked, read_config, with_settings
from activation_atlas.api.images import dataset_section, image_source
from activation_atlas.api.network import as_model
from activation_atlas.api.progress import progress
from activation_atlas.runtime import RunError
from activation_atlas.workflow import paths, settings


def run_files(out, run: str) -> paths.RunFiles:
    """The run folder a call writes: `out`, else a new temporary folder named after the run."""
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="activation-atlas-")) / run
    return paths.RunFiles(folder.name, str(folder.parent))


def extract(
    model,
    layers=None,
    images=None,
    *,
    config=None,
    labels=None,
    classes=None,
    positions_per_image: int | None = None,
    exclude_edge: int | None = None,
    attribution: bool | None = None,
    attribution_top_k: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    out=None,
    verbose: bool = False,
    progress_bar: bool = True,
) -> results.Activations:
    """The activation vectors of `layers` of `model` over `images`, one file per layer of the run folder.

    model: a torch.nn.Module that takes RGB images in [0, 1] once given its conventions, or a Model
    that states them (Model(net, normalize=..., input_size=...)). layers: a module name or a list of
    them (as model.named_modules() names them; an unknown one is answered with the nearest).
    images: a folder (class sub-folders name the classes), a tensor (N, 3, H, W) float in [0, 1] or
    uint8, a torch Dataset of image tensors or (image, label) pairs, or a DataLoader (its dataset);
    None: the config's dataset. labels, classes: a tensor's labels and class names.
    positions_per_image, exclude_edge, attribution, attribution_top_k, batch_size: the extract
    section's settings; seed and device: the config's. config: a run's config (a YAML file or a dict)
    whose settings apply where the call gives none. out: the run folder to write (default: a new one
    under the system's temporary folder). verbose: print every log line; progress_bar: show the bar.
    Returns an Activations, which atlas, class_atlas, comparison and viewer take.
    """
    from activation_atlas.formats.model_card import write_card
    from activation_atlas.runtime import configure_torch, resolve_device
    from activation_atlas.stages.extract import Extraction, evaluated_card, extract_from, merge_activations
    from activation_atlas.stages.model import describe

    network = as_model(model)
    base = read_config(config)
    layers = [layers] if isinstance(layers, str) else layers
    extract_section = {
        "positions_per_image": positions_per_image,
        "exclude_edge": exclude_edge,
        "attribution": attribution,
        "attribution_top_k": attribution_top_k,
        "batch_size": batch_size,
    }
    # A run folder is named after the config's run, else the model.
    top = {"run": base.get("run", network.name), "seed": seed, "device": device, "layers": layers}
    top["model"] = network.section
    given = with_settings(base, top, {"extract": extract_section})
    given["dataset"] = dataset_section(images, given.get("dataset", {}))
    full = checked(given)
    files = run_files(out, full["run"])
    with progress(3 + len(full["layers"]), verbose, progress_bar) as log:
        log.step("model")
        configure_torch(full["threads"], full["seed"], log)
        device_used = resolve_device(full["device"])
        source = image_source(images, full, labels, classes, log)
        input_size = input_size_of(full, source)
        net = network._ready(device_used)
        measured = dict(network.measured or {})
        class_folders = measured.pop("classes", None) or list(source.classes)
        card = {**describe(net, full["model"], full["layers"], input_size, class_folders, log), **measured}
        log.step("extract")
        shards = {layer: files.activation_shard(0, layer) for layer in full["layers"]}
        extraction = Extraction(
            seed=full["seed"],
            device=full["device"],
            layers=full["layers"],
            shard=0,
            images={},
            input_size=input_size,
            dataset=full["dataset"],
            model=full["model"],
            extract={**full["extract"], "shards": 1},
            named_classes=settings.named_classes(full),
        )
        extract_from(net, card, source, shards, extraction, device_used, log)
        for layer, shard in shards.items():
            log.step(f"merge {layer}")
            merge_activations([shard], files.activations(layer), log)
            Path(shard).unlink()
        log.step("model card")
        write_card(files.model_card, evaluated_card(card, files.activations(full["layers"][0]), log))
    return results.Activations(files, given, full, network, net, device_used, source, input_size)


def input_size_of(config: dict, source) -> int:
    """The side of the images the model takes: model.input_size; else a tensor's side; else the
    workflow's default (the generated dataset's size, or 224)."""
    if config["model"]["input_size"] is None and hasattr(source, "images"):
        return int(source.images.shape[-1])
    return settings.model_input_size(config)


def atlas(
    model,
    layer: str,
    activations: results.Activations,
    *,
    grid=None,
    steps: int | None = None,
    icon_size: int | None = None,
    attempts: int | None = None,
    render: dict | None = None,
    layout: dict | None = None,
    montage: dict | None = None,
    min_count: int | None = None,
    verbose: bool = False,
    progress_bar: bool = True,
) -> results.Atlas:
    """The activation atlas of `layer`: its activations laid out by UMAP, a grid over the layout, each
    kept cell's mean activation rendered by feature inversion, the icons drawn as one image, and the
    atlas's figures.

    model: the network the activations were extracted from. activations: what extract returned.
    grid: a grid size or a list of sizes (grid.sizes). steps, icon_size, attempts: render settings;
    render, layout, montage: mappings of those config sections' settings; min_count: grid.min_count.
    The activations' config gives every other setting. Returns an Atlas (its image shows itself in
    Jupyter; .metrics, .image(), .save()).
    """
    from activation_atlas.stages.atlas import Metrics, Montage, atlas_metrics
    from activation_atlas.stages.atlas import montage as draw
    from activation_atlas.stages.cells import Binning, bin_cells
    from activation_atlas.stages.layout import Layout
    from activation_atlas.stages.layout import layout as lay_out

    acts = activations
    net = acts._network_for(model)
    check_layer(layer, acts)
    grids = None if grid is None else ([grid] if isinstance(grid, int) else list(grid))
    sections = {
        "grid": {"sizes": grids, "min_count": min_count},
        "render": {"steps": steps, "icon_size": icon_size, "attempts": attempts, **(render or {})},
        "layout": layout or {},
        "montage": montage or {},
    }
    full = checked(with_settings(acts.given, {}, sections))
    files, seed, grids = acts.files, full["seed"], full["grid"]["sizes"]
    umap = settings.umap_settings(full, layer)
    with progress(2 + 3 * len(grids), verbose, progress_bar) as log:
        log.step(f"layout {layer}")
        layout_settings = Layout(seed=seed, layer=layer, umap=umap, scatter_size=full["layout"]["scatter_size"])
        lay_out(files.activations(layer), files.layout(layer), files.layout(layer, "png"), layout_settings, log)
        for size in grids:
            log.step(f"cells {size}×{size}")
            binning = Binning(seed=seed, layer=layer, grid_size=size, grid=full["grid"])
            bin_cells(
                files.activations(layer), files.layout(layer), files.model_card, files.cells(layer, size), binning, log
            )
            log.step(f"icons {size}×{size}")
            render_grid(acts, net, full, layer, size, files.cells(layer, size), files.icons(layer, size), log)
            log.step(f"montage {size}×{size}")
            draw(
                files.icons(layer, size),
                files.cells(layer, size),
                files.atlas(layer, size),
                files.tiles(layer, size),
                Montage(**full["montage"]),
                log,
            )
        log.step("metrics")
        metrics = Metrics(
            seed=seed,
            layer=layer,
            grids=grids,
            metric=umap["metric"],
            trustworthiness_sample=full["metrics"]["trustworthiness_sample"],
            trustworthiness_neighbors=full["metrics"]["trustworthiness_neighbors"],
        )
        atlas_metrics(
            files.model_card,
            files.activations(layer),
            files.layout(layer),
            [files.cells(layer, size) for size in grids],
            [files.icons(layer, size) for size in grids],
            files.metrics(layer),
            metrics,
            log,
        )
    acts.atlases[layer] = grids
    return results.Atlas(acts, layer, grids, full)


def render_grid(acts: results.Activations, net, config: dict, layer: str, size: int, cells, icons_out, log) -> None:
    """The icons of a layer's grid, as its render jobs make them: in chunks of render.cells_per_job cells,
    merged (the amplitude spectrum first, for the maco parameterisation)."""
    from activation_atlas.formats.cells import count_cells
    from activation_atlas.stages.render import merge_icons
    from activation_atlas.workflow.jobs import render_chunk_count

    section = settings.layer_section(config, "render", layer)
    n = render_chunk_count(
        count_cells(cells), section["cells_per_job"], section["attempts"], section["batch_size"], layer
    )
    chunks = [acts.files.icon_chunk(layer, size, chunk) for chunk in range(n)]
    for chunk, path in enumerate(chunks):
        render_chunk(acts, net, config, layer, size, chunk, cells, path, log)
    merge_icons(chunks, icons_out, log)
    for path in chunks:
        Path(path).unlink()


def render_chunk(acts: results.Activations, net, config, layer, size, chunk: int | None, cells, icons_out, log):
    """One render job: the icons of chunk `chunk` of the cells (None: all of them, as a class atlas's)."""
    from activation_atlas.runtime import configure_torch
    from activation_atlas.stages.render import Rendering, render_cells

    section = settings.layer_section(config, "render", layer)
    spectrum = ensure_spectrum(acts, config, section, log) if section["param"] == "maco" else None
    configure_torch(config["threads"], config["seed"], log)
    rendering = Rendering(
        seed=config["seed"],
        device=config["device"],
        layer=layer,
        grid_size=size,
        chunk=chunk,
        render=section,
        render_config=config["render"],
        model=config["model"],
        input_size=acts.input_size,
    )
    render_cells(net, acts.card, cells, acts.files.activations(layer), spectrum, icons_out, rendering, acts.device, log)


def ensure_spectrum(acts: results.Activations, config: dict, section: dict, log) -> str:
    """The amplitude spectrum of the images at the icon size, made once per run folder."""
    from activation_atlas.stages.render import Spectrum, spectrum_of

    path = acts.files.spectrum(section["icon_size"])
    if not Path(path).is_file():
        spectrum = Spectrum(
            seed=config["seed"],
            icon_size=section["icon_size"],
            images={},
            resize=config["model"]["resize"],
            on_unreadable=config["dataset"]["on_unreadable"],
            spectrum_images=config["render"]["spectrum_images"],
        )
        spectrum_of(acts.source, "the images", path, spectrum, log)
    return path


def check_layer(layer: str, acts: results.Activations) -> None:
    if layer not in acts.layers:
        raise RunError(f"layer {layer!r} was not extracted; these were: {', '.join(acts.layers)}")


def viewer(activations: results.Activations, *, verbose: bool = False, progress_bar: bool = True) -> Path:
    """The viewer page over every atlas made from these activations: each layer's grids as zoom
    levels, then each class atlas and comparison, with thumbnails of each cell's sample images where
    the images came from a folder. Returns the path of viewer.html in the run folder (it opens from
    disk, and works from a saved copy of the folder).
    """
    from activation_atlas.stages.viewer import Viewer, viewer_of

    acts = activations
    if not acts.atlases and not acts.class_atlases:
        raise RunError("no atlas made from these activations yet: make one with atlas() or class_atlas() first")
    image_files = getattr(getattr(acts.source, "folder", None), "files", None)
    page = settings.viewer_page(acts.config, acts.config["model"]["resize"])
    if image_files is None:  # images held in memory: no thumbnails
        page, image_files = {**page, "sample_px": 0}, []
    atlases = settings.viewer_atlases(acts.files, acts.atlases, acts.class_atlases)
    pages = Viewer(seed=acts.config["seed"], images={}, atlases=atlases, page=page)
    with progress(1, verbose, progress_bar) as log:
        log.step("viewer")
        viewer_of(acts.files.root, acts.card, image_files, acts.files.viewer_page, acts.files.viewer_assets, pages, log)
    return Path(acts.files.viewer_page)
