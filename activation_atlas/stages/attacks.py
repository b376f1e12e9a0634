"""Stage attacks (rules/attacks.smk): the paper's patch experiment on a class comparison [a, b]. The
images of class a to attack (images.json), the patches from the comparison atlas's cells and their
controls (patches.h5), the network's answers on every patched image, shard by shard, and the table and
figure of the flips (results.h5, table.json, figure.png)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activation_atlas.algorithms import attack_outcomes as outcomes
from activation_atlas.algorithms import attacks as alg
from activation_atlas.algorithms.attack_figure import plot_attack
from activation_atlas.algorithms.binning import kept_slots
from activation_atlas.algorithms.class_atlas import resolve_pair, select
from activation_atlas.data.image_folder import (
    ImageFolder,
    ImageSelection,
    chosen_pictures,
    images_with_bytes_of,
    load_image,
    read_batch,
    scan_image_folder,
    select_images,
)
from activation_atlas.formats.activations import ActivationFile
from activation_atlas.formats.attack_patches import read_patches, write_patches
from activation_atlas.formats.attack_results import concatenated, merge_results, write_results
from activation_atlas.formats.cells import read_cells
from activation_atlas.formats.icons import IconsFile
from activation_atlas.formats.layout import read_xy
from activation_atlas.formats.model_card import dataset_to_logits, read_card
from activation_atlas.h5io import open_h5
from activation_atlas.models.labels import NAMING_HINT, abbreviated
from activation_atlas.runtime import RunError, atomic_output, derive_seed
from activation_atlas.workflow.jobs import shard_images


@dataclass(frozen=True)
class AttackImages:
    seed: int
    pair: list  # [a, b] as configured
    source: dict  # {kind: other_split | atlas | folder, folder, layout}
    atlas_images: dict  # the run's ImageSelection (the atlas's images)
    max_images: int | None


SOURCES = {
    "other_split": "the generated dataset's other split, not the images the atlas was made from",
    "atlas": (
        "the images the atlas was made from: the dataset has no held-out split (set attacks.images to a "
        "folder of other images)"
    ),
    "folder": "attacks.images, less any image whose bytes equal one the atlas was made from",
}
SEEN_IN_TRAINING = {
    True: "yes: the network was trained on these images",
    False: "no: images held out from the network's training",
    None: "not known (set attacks.images_seen_in_training)",
}


def attack_images(model_card, out_json, settings: AttackImages, log) -> None:
    """The images of class a to attack: from the source, those labelled a, at most max_images of them
    (a seeded draw), listed with where they came from."""
    card_classes = read_card(model_card)["classes"]
    a, b, a_name, b_name = resolve_pair(settings.pair, card_classes)
    source = settings.source
    folder = (
        select_images(ImageSelection(**settings.atlas_images), settings.seed, log)
        if source["kind"] == "atlas"
        else scan_image_folder(source["folder"], source["layout"])
    )
    to_logit = dataset_to_logits(list(folder.classes), card_classes)
    if to_logit is None:
        raise RunError(
            f"attacks: the class folders of {folder.root} ({abbreviated(list(folder.classes), 5)}) do not "
            f"all name one of the model's classes, so its images of {a_name!r} are unknown; {NAMING_HINT}"
        )
    files = [path for path, label in zip(folder.files, folder.labels) if label >= 0 and to_logit[label] == a]
    found = len(files)
    left_out = 0
    if source["kind"] == "folder":
        atlas = select_images(ImageSelection(**settings.atlas_images), settings.seed, log)
        seen = images_with_bytes_of(files, list(atlas.files))
        files = [path for path in files if path not in seen]
        left_out = len(seen)
        log(
            f"{left_out} of the {found} images of {a_name!r} in {folder.root} are images the atlas was made from: "
            "left out"
        )
    if not files:
        raise RunError(
            f"attacks: no image of class {a_name!r} to attack in {folder.root} "
            f"({found} found, {left_out} of them the atlas's own)"
        )
    if settings.max_images is not None and len(files) > settings.max_images:
        rng = np.random.default_rng(derive_seed(settings.seed, "attack_images", a))
        keep = np.sort(rng.choice(len(files), size=settings.max_images, replace=False))
        files = [files[k] for k in keep]
    log(f"{len(files)} images of {a_name!r} to attack, from {SOURCES[source['kind']]}")
    log(f"seen by the network in its training: {SEEN_IN_TRAINING[source['seen_in_training']]}")
    listing = {
        "pair": {"a": a_name, "b": b_name, "a_index": a, "b_index": b},
        "source": source["kind"],
        "source_said": SOURCES[source["kind"]],
        "seen_in_training": source["seen_in_training"],
        "seen_in_training_said": SEEN_IN_TRAINING[source["seen_in_training"]],
        "folder": str(folder.root),
        "found": found,
        "left_out_as_atlas_images": left_out,
        "max_images": settings.max_images,
        "images": [str(path) for path in files],
    }
    with atomic_output(out_json) as partial:
        Path(partial).write_text(json.dumps(listing, indent=1) + "\n")


def read_image_list(path) -> dict:
    return json.loads(Path(path).read_text())


@dataclass(frozen=True)
class AttackPatches:
    seed: int
    layer: str  # the comparison's layer
    pair: list
    images: dict  # the run's ImageSelection (the atlas's images, for the crops)
    input_size: int
    resize: str  # how images are fitted to input_size (model.resize)
    attacks: dict  # the attacks section: cells, crops_per_cell, crop_size, sizes
    pictures: str | None  # the folder of pictures chosen for the pair (attacks.pictures/<a>_vs_<b>)


def cell_rows(activations_path, layout_path, cells, pair_indices: list[int], top_n: int):
    """The comparison's activations (rows as its class_cells stage selected them): their vectors, labels,
    image indices, positions and the layer's grid, and each one's kept cell slot (−1: none)."""
    with ActivationFile(activations_path) as f:
        attribution, attribution_class = f.read_attributions()
        rows = select(attribution, attribution_class, pair_indices, top_n)
        acts, labels, image_index = f.read_rows(rows)
        positions, grid_hw = f.read_positions(rows)
    xy = read_xy(layout_path)
    if len(xy) != len(rows):
        raise RunError(f"{layout_path} has {len(xy)} points, the selection {len(rows)}: rerun the class_cells rule")
    return acts, labels, image_index, positions, grid_hw, kept_slots(xy, cells)


def crop_sources(
    labels: np.ndarray, dataset_classes, card_classes: list[str], a: int, b: int, other_classes: bool
) -> np.ndarray:
    """Which activations dataset crops may come from: all, or (other_classes) those of images labelled
    neither a nor b, so that a crop is not simply a photograph of b (or a)."""
    if not other_classes:
        return np.ones(len(labels), dtype=bool)
    to_logit = dataset_to_logits(list(dataset_classes), card_classes)
    if to_logit is None:
        raise RunError(
            "attacks.crops_from_other_classes: the dataset's class folders do not name the model's classes, "
            f"so images of a and b cannot be told apart; {NAMING_HINT}"
        )
    return (labels >= 0) & ~np.isin(to_logit[np.maximum(labels, 0)], [a, b])


def make_patches(
    cells_path, icons_path, layout_path, activations_path, model_card, out, settings: AttackPatches, log
) -> None:
    """Patches from the cells of the comparison that lean most towards b (their icons and dataset crops
    around the positions of their activations most like the cell's mean), and the controls: noise, and
    icons and crops of cells leaning towards a and of random cells; each at every size."""
    at = settings.attacks
    card_classes = read_card(model_card)["classes"]
    a, b, a_name, b_name = resolve_pair(settings.pair, card_classes)
    cells = read_cells(cells_path)
    with open_h5(cells_path) as f:
        mean_attribution = f["mean_attribution"][:]
        top_n = json.loads(f.attrs["config"])["class_atlas"]["top_n"]
    with IconsFile(icons_path) as icons_file:
        icons = icons_file.icons[:]
        if not (np.array_equal(icons_file.row, cells.row) and np.array_equal(icons_file.col, cells.col)):
            raise RunError(f"{icons_path} does not hold the icons of {cells_path}'s cells: rerun class_icons")
    lean = alg.lean_towards_b(mean_attribution, a, b)
    rng = np.random.default_rng(derive_seed(settings.seed, "attack_cells", a, b))
    chosen = alg.choose_cells(lean, at["cells"], rng)
    log(
        f"{len(cells.row)} cells; leaning most towards {b_name!r}: {alg.describe_cells(cells, lean, chosen['b'])}; "
        f"towards {a_name!r}: {alg.describe_cells(cells, lean, chosen['a'])}; "
        f"random: {alg.describe_cells(cells, lean, chosen['random'])}"
    )
    if (lean[chosen["b"]] <= 0).any():
        log(
            f"warning: {int((lean[chosen['b']] <= 0).sum())} of the cells taken as leaning towards {b_name!r} lean "
            f"towards {a_name!r}: the comparison has fewer than attacks.cells = {at['cells']} cells leaning towards it"
        )
    acts, labels, image_index, positions, grid_hw, slot = cell_rows(activations_path, layout_path, cells, [a, b], top_n)
    folder = select_images(ImageSelection(**settings.images), settings.seed, log)
    croppable = crop_sources(labels, folder.classes, card_classes, a, b, at["crops_from_other_classes"])
    side = settings.input_size
    crop_px = alg.patch_sides([at["crop_size"]], side)[0]
    sources, columns = [], {name: [] for name in ("kind", "cell", "lean", "image_index", "crop", "picture")}

    def add(kind, pixels, cell=-1, image=-1, crop=(-1, -1, -1), picture=""):
        sources.append(pixels)
        columns["kind"].append(kind)
        columns["cell"].append([int(cells.row[cell]), int(cells.col[cell])] if cell >= 0 else [-1, -1])
        columns["lean"].append(float(lean[cell]) if cell >= 0 else np.nan)
        columns["image_index"].append(image)
        columns["crop"].append(list(crop))
        columns["picture"].append(picture)

    def add_cells(side_name: str, slots: np.ndarray):
        for cell in slots:
            add(f"{side_name}_icon", icons[cell], cell)
        for cell in slots:
            mine = np.flatnonzero((slot == cell) & croppable)
            if not len(mine):
                log(f"cell ({cells.row[cell]}, {cells.col[cell]}): no activation of an image of another class to crop")
            for row in mine[alg.closest_to_mean(acts[mine], cells.mean[cell], image_index[mine], at["crops_per_cell"])]:
                image = load_image(folder.files[image_index[row]], side, settings.resize)
                top, left = alg.crop_origin(positions[row], grid_hw, side, crop_px)
                add(
                    f"{side_name}_crop",
                    image[top : top + crop_px, left : left + crop_px],
                    cell,
                    int(image_index[row]),
                    (top, left, crop_px),
                )

    add_cells("b", chosen["b"])
    for path in chosen_pictures(settings.pictures, log):
        add("b_picture", load_image(path, side, "resize_crop"), picture=path.name)
    for _ in chosen["b"]:  # as many noise patches as patches of icons
        add("noise", None)
    add_cells("a", chosen["a"])
    add_cells("random", chosen["random"])
    sides = alg.patch_sides(at["sizes"], side)
    # Noise is drawn at each size, not scaled.
    pixels = {
        px: np.stack(
            [
                alg.resized(np.ascontiguousarray(source), px)
                if source is not None
                else alg.noise_patch(px, np.random.default_rng(derive_seed(settings.seed, "noise", a, b, k, px)))
                for k, source in enumerate(sources)
            ]
        )
        for px in sides
    }
    kinds = columns["kind"]
    log(
        f"{len(kinds)} patches at {', '.join(map(str, sides))} px: "
        + ", ".join(f"{kinds.count(kind)} {kind}" for kind in alg.KINDS if kind in kinds)
    )
    write_patches(
        out,
        {
            "kind": kinds,
            "cell": np.asarray(columns["cell"], dtype=np.int32),
            "lean": np.asarray(columns["lean"], dtype=np.float32),
            "image_index": np.asarray(columns["image_index"], dtype=np.int64),
            "crop": np.asarray(columns["crop"], dtype=np.int32),
            "picture": columns["picture"],
        },
        pixels,
        layer=settings.layer,
        seed=settings.seed,
        pair=[a_name, b_name],
        sizes=list(at["sizes"]),
        sizes_px=sides,
        config={"attacks": at, "pictures": settings.pictures},
    )


@dataclass(frozen=True)
class AttackShard:
    seed: int
    device: str
    pair: list
    shard: int
    attacks: dict  # the attacks section: batch_size, shards
    model: dict
    input_size: int


def attack_shard(images_json, patches_path, weights, model_card, out, settings: AttackShard, threads: int, log) -> None:
    """Every image of the shard, clean and with every patch at every size and corner, through the network:
    its top-1 class and probability of b."""
    import torch

    from activation_atlas.models.loading import load_described_model
    from activation_atlas.runtime import configure_torch, resolve_device

    configure_torch(threads, settings.seed, log)
    device = resolve_device(settings.device)
    card = read_card(model_card)
    a, b, a_name, b_name = resolve_pair(settings.pair, card["classes"])
    listing = read_image_list(images_json)
    files = [Path(path) for path in listing["images"]]
    at = settings.attacks
    images = shard_images(len(files), at["batch_size"], settings.shard, at["shards"], "attacks.shards")
    columns, pixels, _ = read_patches(patches_path)
    sides = list(pixels)  # the patches file's order: that of attacks.sizes
    patch_tensors = {px: torch.from_numpy(pixels[px]).permute(0, 3, 1, 2).float().div(255.0).to(device) for px in sides}
    n_patches = len(columns["kind"])
    model = load_described_model(settings.model, weights, card, device).eval()
    size, policy = settings.input_size, settings.model["resize"]
    log(
        f"{a_name!r} → {b_name!r}: images {images.start}–{images.stop - 1} (shard {settings.shard + 1} of "
        f"{at['shards']}), {n_patches} patches × {len(sides)} sizes × {len(alg.CORNERS)} corners on {device}"
    )
    folder = ImageFolder(Path("."), (), tuple(files), np.full(len(files), -1, dtype=np.int64))
    start, parts = time.perf_counter(), []
    for first in range(images.start, images.stop, at["batch_size"]):
        indices = np.arange(first, min(first + at["batch_size"], images.stop))
        batch = read_batch(folder, indices, size, policy, "fail", log).images
        parts.append(alg.attack_batch(model, batch.to(device), [patch_tensors[px] for px in sides], b))
        log(f"{indices[-1] + 1 - images.start}/{len(images)} images, {time.perf_counter() - start:.1f} s")
    write_results(
        out,
        np.arange(images.start, images.stop),
        concatenated(parts),
        seed=settings.seed,
        pair=[a_name, b_name],
        corners=list(alg.CORNERS),
        shard=[settings.shard, at["shards"]],
    )


@dataclass(frozen=True)
class AttackTable:
    seed: int
    pair: list
    attacks: dict  # the attacks section: sizes, static
    input_size: int
    resize: str


def attack_table(
    shard_paths, images_json, patches_path, model_card, results_out, table_out, figure_out, settings: AttackTable, log
) -> None:
    """The shards merged, and the paper's figures per patch and per kind of patch: flipped of correct
    before, success rate with its interval, mean probability of b before and after, at the static, the
    most effective and any placement, and by size; the figure."""
    card_classes = read_card(model_card)["classes"]
    a, b, a_name, b_name = resolve_pair(settings.pair, card_classes)
    _, results = merge_results(list(shard_paths), results_out)
    listing = read_image_list(images_json)
    columns, pixels, attrs = read_patches(patches_path)
    at = settings.attacks
    sides = list(pixels)  # the patches file's order: that of attacks.sizes
    static = (at["sizes"].index(at["static"]["size"]), alg.CORNERS.index(at["static"]["corner"]))
    correct = results.clean_top == a
    log(f"{int(correct.sum())} of {len(correct)} images of {a_name!r} classified as {a_name!r} before the attack")
    if not correct.any():
        raise RunError(
            f"attacks: the model classifies none of the {len(correct)} images of {a_name!r} as {a_name!r}: "
            "nothing to attack"
        )
    kinds = columns["kind"]
    listed = ("source", "source_said", "seen_in_training", "seen_in_training_said", "folder", "found")
    table = {
        "pair": listing["pair"],
        "layer": str(attrs["layer"]),
        "images": {key: listing[key] for key in (*listed, "left_out_as_atlas_images")}
        | {"attacked": len(correct), "correct_before": int(correct.sum())},
        "placement": {
            "sizes": list(at["sizes"]),
            "sizes_px": sides,
            "image_px": settings.input_size,
            "corners": list(alg.CORNERS),
            "static": dict(at["static"]),
            "said": dict(outcomes.PLACEMENTS),
        },
        "intervals": dict(outcomes.INTERVALS),
    }
    names = {"a": a_name, "b": b_name}
    table["kinds"] = outcomes.kind_figures(results, kinds, correct, names, b, static, sides, settings.seed)
    table["patches"] = outcomes.patch_figures(results, columns, correct, b, static, sides)
    for kind, figures in table["kinds"].items():
        log(outcomes.described(kind, figures, b_name))
    with atomic_output(table_out) as partial:
        Path(partial).write_text(json.dumps(table, indent=1) + "\n")
    example = int(np.flatnonzero(correct)[0])
    clean = load_image(Path(listing["images"][example]), settings.input_size, settings.resize)
    plot_attack(table, columns["kind"], pixels, results, example, clean, figure_out)
