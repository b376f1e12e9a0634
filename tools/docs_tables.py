"""Tables of measured figures in docs/*.md, made from the JSON that holds the figures rather than
copied by hand: each sits between `<!-- table: NAME -->` and `<!-- end table -->`, and NAME says
where its figures come from. tests/test_docs.py checks that every such table is what this makes.

    python -m tools.docs_tables            # rewrite the tables of docs/*.md
    python -m tools.docs_tables --check    # exit 1, naming the page and table, where one differs

The run tables read the reference manifests (reference/<run>/MANIFEST.json: the figures of the runs
`make docs` makes, which `make verify` checks a reviewer's run against); the measurement tables read
what the benchmarks keep (docs/measurements/<benchmark>.json, with where it was measured).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from activation_atlas.algorithms.binning import PURE_CELL
from activation_atlas.checking.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MEASUREMENTS = DOCS / "measurements"
TABLE = re.compile(r"(<!-- table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def figures(run: str, file: str) -> dict:
    return read_manifest(REPO / "reference" / run / "MANIFEST.json")["files"][file]["figures"]


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def atlas_rows(run: str, layers: dict[str, str]) -> list[list]:
    """Per layer (name shown → layer) and grid: cells, mean and lowest icon fidelity, class agreement."""
    rows = []
    for shown, layer in layers.items():
        grid_figures = figures(run, f"atlas/{layer}/metrics.json")
        for grid in sorted({int(key.split(".")[1]) for key in grid_figures if key.startswith("grids.")}):
            g = f"grids.{grid}."
            rows.append(
                [
                    f"`{shown}`",
                    grid,
                    grid_figures[g + "cells_kept"],
                    f"{grid_figures[g + 'mean_icon_fidelity']:.3f}",
                    f"{grid_figures[g + 'min_icon_fidelity']:.3f}",
                    f"{grid_figures[g + 'class_agreement']:.2f}",
                ]
            )
    return rows


def demo_vit_atlases() -> str:
    layers = {f"encoder_layer_{k}": f"encoder.layers.encoder_layer_{k}" for k in (2, 3)}
    return markdown(
        ["layer", "grid", "cells", "mean icon fidelity", "lowest", "class agreement"], atlas_rows("demo-vit", layers)
    )


def aligned_demo_members() -> str:
    member_figures = figures("aligned-demo", "metrics.json")
    members = [member_figures[key] for key in sorted(k for k in member_figures if k.startswith("members."))]
    rows = []
    for member in members:
        grids = sorted({int(key.split(".")[2]) for key in member_figures if key.startswith(f"grids.{member}.")})
        for grid in grids:
            g = f"grids.{member}.{grid}."
            rows.append(
                [
                    member,
                    grid,
                    member_figures[g + "cells"],
                    f"{member_figures[g + 'mean_icon_fidelity']:.3f}",
                    f"{member_figures[g + 'min_icon_fidelity']:.3f}",
                    f"{member_figures[g + 'class_agreement']:.2f}",
                ]
            )
    return markdown(["member", "grid", "cells", "mean icon fidelity", "lowest", "class agreement"], rows)


def measurement(name: str) -> dict:
    return json.loads((MEASUREMENTS / f"{name}.json").read_text())


def measured_on(record: dict) -> str:
    """Where and from what a kept measurement was made, as a line under its table."""
    commit = record["source"]["commit"]
    source = f"commit `{commit[:7]}`" + (" with changes" if record["source"]["uncommitted_changes"] else "")
    return (
        f"\n*`{record['command']}` on {record['cpu']['model']} ({record['cpu']['logical_cpus']} logical CPUs), "
        f"torch {record['packages']['torch']}, {source}.*\n"
    )


def batch_ratios(rendering: dict) -> str:
    """'B = 8 / 16 / 32: 3.5× / 4.2× / **5.2×**', the best batch size in bold."""
    ratios = rendering["ratio_by_batch_size"]
    shown = [
        f"**{ratio:.1f}×**" if int(b) == int(rendering["best_batch_size"]) else f"{ratio:.1f}×"
        for b, ratio in ratios.items()
    ]
    return f"B = {' / '.join(ratios)}: {' / '.join(shown)}"


def run_benchmarks(record: dict) -> str:
    figures = record["figures"]
    extraction = figures["extraction"]
    rows = [
        [
            "(a) extraction (hooks, position sampling, HDF5 writes) vs a bare forward pass of the demo CNN, "
            f"batch {extraction['batch_size']}, the same {extraction['images']:,} in-memory images",
            f"{extraction['extract_images_per_s']:.0f} vs {extraction['bare_images_per_s']:.0f} images/s: "
            f"**{extraction['ratio_median']:.2f}×**",
        ]
    ]
    renderings = figures["rendering"] + [figures[key] for key in ("rendering_inceptionv1",) if key in figures]
    for rendering in renderings:
        network = "InceptionV1 (random weights)" if rendering["layer"].startswith("inceptionv1") else "demo CNN"
        layer = rendering["layer"].removeprefix("inceptionv1 ")
        rows.append(
            [
                f"(b) batched vs one-at-a-time rendering, {network} {layer} ({rendering['icon_size']} px), "
                f"{rendering['icons']} icons × {rendering['steps']} steps",
                f"{batch_ratios(rendering)} (one at a time: {rendering['one_at_a_time_icons_per_s']:.1f} icons/s)",
            ]
        )
    return markdown(
        [f"measurement (medians of 3 rounds, torch on {figures['torch_threads']} threads)", "figure"], rows
    ) + measured_on(record)


def transforms_shown(row: dict) -> str:
    """The variant's transforms: "yes" (as configured), else what they are, in bold."""
    shown = row.get("transforms", "none" if row["variant"] == "no transforms" else "yes")
    return shown if shown == "yes" else f"**{shown}**"


def render_quality(record: dict) -> str:
    """Each render variant of one layer's atlas; what a variant changes from the config is bold. The icon
    size, learning rate and lowest fidelity are shown where the measurement has them and they vary."""
    figures = record["figures"]
    variants = figures["variants"]
    configured = next(row for row in variants if row["variant"] == "config")

    def setting(row: dict, key: str, shown) -> str:
        return f"**{shown}**" if row["settings"].get(key) != configured["settings"].get(key) else str(shown)

    def varies(key: str, rows: list[dict]) -> bool:
        return len({row["settings"].get(key) for row in rows}) > 1

    # A learning rate column where the configured parameterisation is tried at another (maco's rate is
    # shown beside it otherwise).
    same_param = [row for row in variants if row["settings"]["param"] == configured["settings"]["param"]]
    sizes, rates = varies("icon_size", variants), varies("lr", same_param)
    lowest = "min_icon_fidelity" in configured
    rows = []
    for row in variants:
        param = row["settings"]["param"]
        param += f" (lr {row['settings']['lr']})" if param == "maco" and not rates else ""
        rows.append(
            [setting(row, "param", param)]
            + ([setting(row, "icon_size", row["settings"]["icon_size"])] if sizes else [])
            + [setting(row, "steps", row["settings"]["steps"]), setting(row, "attempts", row["settings"]["attempts"])]
            + ([setting(row, "lr", row["settings"]["lr"])] if rates else [])
            + [
                setting(row, "cossim_pow", row["settings"]["cossim_pow"]),
                setting(row, "whiten", "yes" if row["settings"]["whiten"] else "no"),
                transforms_shown(row),
                f"{row['mean_icon_fidelity']:.3f}",
            ]
            + ([f"{row['min_icon_fidelity']:.3f}"] if lowest else [])
            + [
                f"{row['class_agreement']:.3f}",
                f"{row['class_agreement_in_pure_cells']:.3f}"
                if row["class_agreement_in_pure_cells"] is not None
                else "–",
                f"{row['seconds_per_icon']:.2f}",
            ]
        )
    header = (
        ["param"]
        + (["icon px"] if sizes else [])
        + ["steps", "attempts"]
        + (["lr"] if rates else [])
        + ["cossim_pow", "whiten", "transforms", "mean icon fidelity"]
        + (["lowest"] if lowest else [])
        + ["class agreement, all cells", "class agreement, pure cells", "s / icon"]
    )
    sample = figures.get("cells_rendered", figures["cells"])
    sampled = f"; {sample} of them rendered, a seeded sample" if sample < figures["cells"] else ""
    summary = (
        f"\n{figures['layer']} at grid {figures['grid']}: {figures['activations']:,} activations, "
        f"{figures['cells']} cells ({figures['pure_cells']} of purity ≥ {PURE_CELL}){sampled}, cell classes by "
        f"{figures['cell_top_class_by']}; torch on {figures['threads']} threads.\n"
    )
    return markdown(header, rows) + summary + measured_on(record)


def reproducibility(record: dict) -> str:
    """A config made again under each setting, as verify finds it against the plain run."""
    figures = record["figures"]
    rows = []
    for setting, found in figures["variants"].items():
        shown = f"`{setting}`" if "=" in setting else setting
        files = sum(found[status] for status in ("identical", "within tolerance", "differs", "missing"))
        differing = found["differing_files"]
        beyond = ", ".join(f"`{path}`" for path in differing[:3]) + (", …" if len(differing) > 3 else "")
        rows.append(
            [
                shown,
                found["identical"],
                found["within tolerance"],
                found["differs"],
                found["missing"],
                files,
                beyond or "—",
            ]
        )
    header = ["setting", "identical", "within tolerance", "differs", "missing", "files", "beyond tolerance"]
    return markdown(header, rows) + measured_on(record)


def portable_kernels(record: dict) -> str:
    """Seconds per training step of the default run's CNN with native and with portable kernels."""
    figures = record["figures"]
    median = figures["median"]
    rows = [
        [
            f"demo CNN training step, batch 64 at 64 px (median of {figures['rounds']})",
            f"{median['native']:.3f} s",
            f"{median['portable']:.3f} s",
            f"{figures['ratio']:.2f}×",
        ]
    ]
    return markdown(["", "native", "portable", "ratio"], rows) + measured_on(record)


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def rate_with_interval(outcome: dict) -> str:
    """'22 / 423: 5.2 % (3.5–7.8)': flipped of attacked, the success rate and its 95 % interval."""
    low, high = outcome["interval"]
    flipped = f"{outcome['flipped']} / {outcome['attacked']}: " if "flipped" in outcome else ""
    return f"{flipped}{percent(outcome['success_rate'])} % ({percent(low)}–{percent(high)})"


def attacks(record: dict) -> str:
    """Per attacked pair and kind of patch: the images flipped to the target class at the static, the most
    effective and any placement, each rate with its 95 % interval, the spread of the patches' static rates,
    and the target's mean probability; then the rates by patch side."""
    rows, size_rows, notes = [], [], []
    for pair in record["figures"].values():
        images, placement = pair["images"], pair["placement"]
        name = f"{pair['pair']['a']} → {pair['pair']['b']}"
        for kind, figures in pair["kinds"].items():
            static, dynamic = figures["static"], figures["dynamic"]
            spread = figures["static_per_patch"]
            p_b = [percent(value) for value in (static["p_b_before"], static["p_b_after"], dynamic["p_b_after"])]
            rows.append(
                [
                    name,
                    f"`{kind}`",
                    figures["patches"],
                    rate_with_interval(static),
                    f"{percent(spread['lowest'])}–{percent(spread['highest'])} %",
                    rate_with_interval(dynamic),
                    f"{percent(figures['any_placement']['success_rate'])} %",
                    f"{p_b[0]} → {p_b[1]} / {p_b[2]} %",
                ]
            )
            size_rows.append(
                [name, f"`{kind}`"]
                + [rate_with_interval(row["static_corner"]) for row in figures["by_size"]]
                + [rate_with_interval(row["best_corner"]) for row in figures["by_size"]]
            )
        seen = images.get("seen_in_training_said", "not recorded")
        notes.append(
            f"\n*{name}: {images['correct_before']} of {images['attacked']} images of {pair['pair']['a']} classified "
            f"correctly before the attack, from {images['source_said']}; seen by the network in training: {seen}. "
            f"Static: {placement['static']['size']} of the side, {placement['static']['corner'].replace('_', ' ')}; "
            f"dynamic: per image the most effective of {len(placement['corners'])} corners × sides "
            f"{', '.join(map(str, placement['sizes_px']))} px of {placement['image_px']} (highest p(b)); any "
            "placement: flipped where any flips (an upper bound). 95 % intervals: a bootstrap over the kind's "
            "patches and the images, covering Wilson's over its patched images.*\n"
        )
    header = [
        "pair",
        "patch kind",
        "patches",
        "flipped, static",
        "per patch, static",
        "flipped, dynamic",
        "any placement",
        "p(b): before → static / dynamic",
    ]
    sides = [f"{px} px" for px in next(iter(record["figures"].values()))["placement"]["sizes_px"]]
    size_header = ["pair", "patch kind"] + [f"{side}, static corner" for side in sides]
    size_header += [f"{side}, most effective corner" for side in sides]
    return (
        markdown(header, rows)
        + "".join(notes)
        + "\nBy patch side (share flipped, and its 95 % interval):\n\n"
        + markdown(size_header, size_rows)
        + measured_on(record)
    )


def extraction_rate(record: dict) -> str:
    """Per batch size and case: images per second (and against the bare channels-last forward pass),
    the first batch's seconds and the process's peak memory."""
    figures = record["figures"]
    bare = {
        row["batch_size"]: row["images_per_second"]
        for row in figures["rows"]
        if row["case"] == "forward, channels-last"
    }
    rows = [
        [
            row["case"],
            row["batch_size"],
            f"{row['images_per_second']:.1f}",
            f"{row['images_per_second'] / bare[row['batch_size']]:.2f}×",
            f"{row['first_batch_seconds']:.2f}",
            f"{row['peak_memory_gib']:.2f}",
        ]
        for row in figures["rows"]
    ]
    header = ["case", "batch", "images / s", "of the bare forward pass", "first batch, s", "peak memory, GiB"]
    summary = (
        f"\n{figures['model']} at {figures['input_size']} px, layers {', '.join(figures['layers'])}; median over "
        f"{figures['batches_timed']} batches after the first; attribution to each image's "
        f"{figures['attribution_top_k']} highest logits; torch on {figures['threads']} threads.\n"
    )
    return markdown(header, rows) + summary + measured_on(record)


def render_rate(record: dict) -> str:
    """Per layer: milliseconds per icon-step with the network as loaded and with its batch norms folded,
    the ratio, seconds per icon at the configured steps, and the batch norms' share of an unfolded step."""
    figures = record["figures"]
    rows = []
    for layer in figures["layers"]:
        loaded, folded = layer["ms_per_icon_step"]["as loaded"], layer["ms_per_icon_step"]["batch norms folded"]
        rows.append(
            [
                layer["layer"],
                f"{layer['icon_size']} px, {layer['param']}, batch {layer['batch_size']}",
                f"{layer['batch_norm_share']:.0%}",
                f"{loaded:.1f}",
                f"{folded:.1f}",
                f"{loaded / folded:.2f}×",
                f"{loaded * layer['steps_configured'] / 1000:.1f}",
                f"{folded * layer['steps_configured'] / 1000:.1f}",
                layer["steps_configured"],
            ]
        )
    header = [
        "layer",
        "icons",
        "batch norms' share of a step",
        "ms / icon-step, as loaded",
        "folded",
        "speed-up",
        "s / icon, as loaded",
        "folded",
        "at steps",
    ]
    summary = (
        f"\n{figures['model']}; medians over {figures['rounds']} renders of "
        f"{figures['layers'][0]['steps_timed']} steps per case, the cases alternating; torch on "
        f"{figures['threads']} threads.\n"
    )
    return markdown(header, rows) + summary + measured_on(record)


def unit_name(kind: str, metrics: dict) -> str:
    if kind == "neurons":
        return "neurons (channels)"
    if kind == "atoms":
        return f"atoms (of {metrics['atoms']}, k = {metrics['top_k']}, those that fire)"
    grid = kind.removeprefix("cells_grid")
    return f"atlas cells, {grid}×{grid} grid"


def unit_order(kind: str) -> tuple:
    """Neurons, then the cells by grid size, then the atoms."""
    return ({"neurons": 0, "atoms": 2}.get(kind, 1), int(kind.removeprefix("cells_grid")) if "grid" in kind else 0)


def dictionary_units(record: dict) -> str:
    """Per layer: for its neurons, its atlas's cells and its dictionary's atoms, the class purity of
    each unit's top activations and its icon's fidelity; and the dictionary's quality."""
    figures = record["figures"]
    text = ""
    for layer, metrics in figures["layers"].items():
        units = metrics["units"]
        top = next(iter(units.values()))["top_activations"]
        rows = [
            [
                unit_name(kind, metrics),
                units[kind]["units"],
                f"{units[kind]['mean_top_class_purity']:.3f}",
                f"{units[kind]['mean_icon_fidelity']:.3f}",
            ]
            for kind in sorted(units, key=unit_order)
        ]
        header = ["unit", "units", f"class purity of its top {top} activations", "icon fidelity"]
        activations = metrics["held_out_activations"] + metrics["training_activations"]
        text += markdown(header, rows) + (
            f"\n`{layer}` of {figures['model']} on {activations:,} activations ({figures['images']}); the "
            f"dictionary explains {metrics['explained_variance']:.3f} of the "
            f"variance of the held-out images' {metrics['held_out_activations']:,} activations "
            f"({metrics['explained_variance_train']:.3f} of the training ones'), L0 {metrics['mean_l0']:g}, "
            f"{metrics['dead_atoms']} dead and {metrics['dense_atoms']} dense atoms.\n"
        )
    return text + measured_on(record)


def dictionary_scale(record: dict) -> str:
    """Per number of activations: wall time and peak RSS of learning a dictionary."""
    figures = record["figures"]
    rows = [
        [
            f"{row['n']:,} × {row['channels']}",
            row["atoms"],
            row["epochs"],
            f"{row['seconds']:.0f}",
            f"{row['seconds_per_million_activations_and_epoch']:.0f}",
            f"{row['peak_rss_mb']:.0f}",
            f"{row['explained_variance']:.3f}",
        ]
        for row in figures["sizes"]
    ]
    header = ["activations", "atoms", "epochs", "seconds", "s per 1M activations and epoch", "peak RSS (MB)",
              "explained variance (held out)"]  # fmt: skip
    section = figures["section"]
    summary = (
        f"\nTopK k = {section['top_k']}, batches of {section['batch_size']}, on {figures['device']}; seconds "
        "include the pass that encodes every activation for the atoms' statistics.\n"
    )
    return markdown(header, rows) + summary + measured_on(record)


# Tables of a run's figures, by name; a table named after a kept measurement (docs/measurements/<name>.json)
# is made by the MEASUREMENT_TABLES entry for its benchmark (the name up to the first "-").
TABLES = {"demo-vit-atlases": demo_vit_atlases, "aligned-demo-members": aligned_demo_members}
MEASUREMENT_TABLES = {
    "run_benchmarks": run_benchmarks,
    "render_quality": render_quality,
    "reproducibility": reproducibility,
    "portable_kernels": portable_kernels,
    "attacks": attacks,
    "extraction_rate": extraction_rate,
    "render_rate": render_rate,
    "dictionary_units": dictionary_units,
    "dictionary_scale": dictionary_scale,
}


def table_text(name: str) -> str:
    if name in TABLES:
        return TABLES[name]()
    benchmark = name.split("-")[0]
    if benchmark in MEASUREMENT_TABLES and (MEASUREMENTS / f"{name}.json").exists():
        return MEASUREMENT_TABLES[benchmark](measurement(name))
    kept = sorted(path.stem for path in MEASUREMENTS.glob("*.json"))
    raise SystemExit(
        f"unknown table {name!r}; tools/docs_tables.py makes: {', '.join(TABLES)}, and one for each "
        f"kept measurement of {', '.join(MEASUREMENT_TABLES)} (kept: {', '.join(kept) or 'none'})"
    )


def rendered(page: str) -> str:
    """The page with every table made again; an unknown table name is an error."""

    def table(match: re.Match) -> str:
        return match.group(1) + table_text(match.group("name")) + match.group(4)

    return TABLE.sub(table, page)


def shown_tables(docs: Path = DOCS) -> set[str]:
    """The names of the tables on the pages."""
    return {match.group("name") for path in docs.glob("*.md") for match in TABLE.finditer(path.read_text())}


def stale_tables(docs: Path = DOCS) -> list[str]:
    """'page: table' for every table whose text is not what its figures make."""
    stale = []
    for path in sorted(docs.glob("*.md")):
        text = path.read_text()
        for match in TABLE.finditer(text):
            if rendered(match.group(0)) != match.group(0):
                stale.append(f"{path.name}: {match.group('name')}")
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which tables differ from their figures")
    args = parser.parse_args()
    if args.check:
        stale = stale_tables()
        for entry in stale:
            print(f"stale table: {entry} (python -m tools.docs_tables)", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        if TABLE.search(text):
            path.write_text(rendered(text))


if __name__ == "__main__":
    main()
