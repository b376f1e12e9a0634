"""The figure of a patch attack: an example before and after, its patches, and the success rate
against patch size per kind of patch."""

from __future__ import annotations

import numpy as np

from activation_atlas.algorithms import attacks as alg
from activation_atlas.formats.attack_results import AttackResults
from activation_atlas.runtime import atomic_output


def plot_attack(
    table: dict,
    kinds: np.ndarray,
    pixels: dict[int, np.ndarray],
    results: AttackResults,
    example: int,
    clean: np.ndarray,
    out,
) -> None:
    """The attack's figure, from its table (stages/attacks.py) and patches. Top: `example`, an image
    attacked (`clean`, as the model is fed it), before and after the patch leaning towards b that does most
    at the static placement, and one patch of each kind. Bottom: success rate against patch size per kind, at the
    static corner (left) and the most effective corner per image (right), each with its 95 % interval."""
    import matplotlib  # imported here: only this rule draws

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    a_name, b_name = table["pair"]["a"], table["pair"]["b"]
    static = table["placement"]["static"]
    sides = table["placement"]["sizes_px"]
    s, c = table["placement"]["sizes"].index(static["size"]), alg.CORNERS.index(static["corner"])
    attack_patches = [entry for entry in table["patches"] if entry["kind"] in ("b_icon", "b_crop")]
    best = max(
        attack_patches, key=lambda entry: (entry["static"]["success_rate"] or 0.0, entry["static"]["p_b_after"] or 0.0)
    )["patch"]
    px = sides[s]
    side = table["placement"]["image_px"]
    top, left = alg.corner_origin(static["corner"], side, px)
    patched = clean.copy()
    patched[top : top + px, left : left + px] = pixels[px][best]
    shown_kinds = [kind for kind in alg.KINDS if kind in set(kinds)]
    fig = plt.figure(figsize=(max(8, 1.3 * (2 + len(shown_kinds))), 5.6), dpi=100)
    grid = fig.add_gridspec(2, 2 + len(shown_kinds), height_ratios=[1, 1.6])
    for k, (image, title) in enumerate(
        [
            (clean, f"{a_name}\np(b) = {results.clean_p_b[example]:.2f}"),
            (patched, f"patch {best}\np(b) = {results.p_b[best, s, c, example]:.2f}"),
        ]
    ):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    largest = max(sides)
    for k, kind in enumerate(shown_kinds):
        ax = fig.add_subplot(grid[0, 2 + k])
        ax.imshow(pixels[largest][int(np.flatnonzero(kinds == kind)[0])], interpolation="nearest")
        ax.set_title(kind.replace("_", " "), fontsize=7)
        ax.axis("off")
    colours = plt.get_cmap("tab10")
    halves = (grid[1, : (2 + len(shown_kinds)) // 2], grid[1, (2 + len(shown_kinds)) // 2 :])
    # Each kind's points a little to the side of the others, so that their intervals can be told apart.
    step = 0.6 * min(np.diff(sides), default=2) / max(len(shown_kinds), 1)
    panels = []
    for half, (placement, said) in zip(
        halves,
        (
            ("static_corner", f"static corner ({static['corner'].replace('_', ' ')})"),
            ("best_corner", "most effective corner"),
        ),
    ):
        ax = fig.add_subplot(half)
        panels.append(ax)
        for k, kind in enumerate(shown_kinds):
            rows = table["kinds"][kind]["by_size"]
            rates = np.array([row[placement]["success_rate"] for row in rows])
            low, high = (np.array([row[placement]["interval"][end] for row in rows]) for end in (0, 1))
            x = np.asarray(sides, dtype=float) + (k - (len(shown_kinds) - 1) / 2) * step
            ax.errorbar(
                x,
                rates,
                yerr=[rates - low, high - rates],
                fmt="-o",
                color=colours(k),
                label=kind,
                markersize=3,
                linewidth=1,
                elinewidth=0.8,
                capsize=2,
            )
        ax.set_xlabel(f"patch side (px of {side})")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(sides)
        ax.set_title(said, fontsize=8)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    panels[0].set_ylabel(f"share flipped to {b_name}")
    fig.suptitle(
        f"a = {a_name} → b = {b_name}: {table['images']['correct_before']} images; bars: 95 % intervals",
        fontsize=8,
        y=0.02,
    )
    fig.tight_layout()
    with atomic_output(out) as partial:
        fig.savefig(partial, format="png", metadata={"Software": None})
    plt.close(fig)
