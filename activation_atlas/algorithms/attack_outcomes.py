"""The figures of a patch attack (algorithms/attacks.py), per patch and per kind of patch, each success rate
with its 95 % interval.

Placements. *Static*: one size and corner for every image. *Dynamic*, as the paper defines it: per patch
and image, the most effective placement among the corners and sizes, the one giving the highest probability
of b; the image counts as flipped when that placement flips it. *Any placement* counts an image as flipped
when any placement flips it: an upper bound on what a placement chosen per image can do, kept as such.

Intervals. One patch on N images: Wilson's score interval. A kind's patches pooled: the 2.5th and 97.5th
percentiles of a bootstrap that resamples the patches and the images (both vary, and the P × N attacked
images are not independent), widened where needed to cover Wilson's interval over the P × N trials (the
bootstrap's collapses to a point when nothing flips); its rates are exact (integer counts), so its bytes
do not depend on the machine.
"""

from __future__ import annotations

import numpy as np

from activation_atlas.algorithms.attacks import KINDS
from activation_atlas.formats.attack_results import AttackResults
from activation_atlas.runtime import derive_seed

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000

PLACEMENTS = {
    "static": "one size and corner for every image",
    "dynamic": "per patch and image, the placement (corner and size) giving the highest probability of b; "
    "flipped when that placement flips the image",
    "any_placement": "flipped when any placement flips the image: an upper bound, not the paper's figure",
}
INTERVALS = {
    "patch": f"Wilson score interval, {CONFIDENCE:.0%}, over the images",
    "kind": f"{CONFIDENCE:.0%} percentile interval of {BOOTSTRAP_RESAMPLES} bootstrap resamples of the kind's "
    "patches and of the images, widened to cover Wilson's interval over all its patched images",
}


def rounded(value: float) -> float:
    return round(float(value), 6)


def wilson_interval(flipped: int, attacked: int) -> list[float] | None:
    """Wilson's score interval of flipped / attacked at CONFIDENCE; None for no images."""
    if not attacked:
        return None
    from scipy.stats import binomtest

    interval = binomtest(int(flipped), int(attacked)).proportion_ci(CONFIDENCE, method="wilson")
    return [rounded(interval.low), rounded(interval.high)]


def bootstrap_interval(flips: np.ndarray, rng: np.random.Generator) -> list[float] | None:
    """The percentile interval of the mean of flips (P patches × N images, 0/1) over resamples of both
    patches and images, drawn as multinomial counts (rates from integer sums: exact)."""
    patches, images = flips.shape
    if not patches or not images:
        return None
    patch_counts = rng.multinomial(patches, np.full(patches, 1 / patches), size=BOOTSTRAP_RESAMPLES)
    image_counts = rng.multinomial(images, np.full(images, 1 / images), size=BOOTSTRAP_RESAMPLES)
    hits = ((patch_counts @ flips.astype(np.int64)) * image_counts).sum(axis=1)
    rates = hits / (patches * images)
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(rates, [tail, 100 - tail])
    return [rounded(low), rounded(high)]


def rate_interval(flips: np.ndarray, rng: np.random.Generator | None) -> list[float] | None:
    """Wilson's interval for one patch (rng None). For a kind's patches, the bootstrap's interval widened
    to cover Wilson's over all its P × N trials: the bootstrap collapses to a point where no image (or
    every image) flips, which Wilson's interval does not claim."""
    wilson = wilson_interval(int(flips.sum()), flips.size)
    if rng is None:
        assert flips.shape[0] == 1, "several patches pooled need the bootstrap's generator"
        return wilson
    bootstrap = bootstrap_interval(flips, rng)
    if bootstrap is None:
        return None
    return [min(bootstrap[0], wilson[0]), max(bootstrap[1], wilson[1])]


def outcome(flips: np.ndarray, p_before: np.ndarray, p_after: np.ndarray, rng) -> dict:
    """The paper's figures for patches on the same images: flipped of correct before, the success rate and
    its interval, the mean probability of b before and after and its change. flips, p_after: (P, N)."""
    attacked = int(flips.size)
    before = rounded(np.mean(p_before)) if p_before.size else None
    after = rounded(np.mean(p_after)) if p_after.size else None
    return {
        "flipped": int(flips.sum()),
        "attacked": attacked,
        "success_rate": rounded(flips.sum() / attacked) if attacked else None,
        "interval": rate_interval(flips, rng),
        "p_b_before": before,
        "p_b_after": after,
        "p_b_change": None if before is None else rounded(after - before),
    }


def placements_of(results: AttackResults, patches: np.ndarray, correct: np.ndarray, sizes) -> tuple:
    """(top, p_b) of the patches on the correct images over the given sizes and every corner:
    (P, placements, N') with placements = sizes × corners."""
    top = results.top[patches][:, sizes][..., correct]
    p_b = results.p_b[patches][:, sizes][..., correct]
    shape = (top.shape[0], -1, top.shape[-1])
    return top.reshape(shape), p_b.reshape(shape)


def static_flips(results, patches, correct, b: int, size: int, corner: int) -> tuple[np.ndarray, np.ndarray]:
    """(flips, p_b) of the patches at one size and corner on the correct images: (P, N')."""
    return results.top[patches, size, corner][:, correct] == b, results.p_b[patches, size, corner][:, correct]


def most_effective(top: np.ndarray, p_b: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(flips, p_b) at each patch and image's most effective placement, from placements_of()'s arrays (the
    highest probability of b; the first of equals)."""
    best = p_b.argmax(axis=1)[:, None, :]
    return np.take_along_axis(top, best, axis=1)[:, 0] == b, np.take_along_axis(p_b, best, axis=1)[:, 0]


def any_placement(top: np.ndarray, p_b: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(flips where any placement flips, the highest probability of b) per patch and image, from
    placements_of()'s arrays."""
    return (top == b).any(axis=1), p_b.max(axis=1)


def placement_outcomes(results, patches, correct, b: int, static: tuple[int, int], rng_for) -> dict:
    """outcome() at the static placement, the most effective placement and any placement; rng_for(name):
    the bootstrap's generator for that figure, or None for one patch."""
    before = results.clean_p_b[correct]
    every = placements_of(results, patches, correct, slice(None))
    figures = {
        "static": static_flips(results, patches, correct, b, *static),
        "dynamic": most_effective(*every, b),
        "any_placement": any_placement(*every, b),
    }
    return {name: outcome(flips, before, p_after, rng_for(name)) for name, (flips, p_after) in figures.items()}


def rate_only(flips: np.ndarray, rng) -> dict:
    return {
        "success_rate": rounded(flips.mean()) if flips.size else None,
        "interval": rate_interval(flips, rng),
    }


def by_size(results, patches, correct, b: int, corner: int, sides: list[int], rng_for) -> list[dict]:
    """Per patch size: the success rate and its interval at the static corner, and at the most effective
    corner per image."""
    rows = []
    for s, px in enumerate(sides):
        static, _ = static_flips(results, patches, correct, b, s, corner)
        best, _ = most_effective(*placements_of(results, patches, correct, [s]), b)
        rows.append(
            {
                "px": px,
                "static_corner": rate_only(static, rng_for(f"size {px} static")),
                "best_corner": rate_only(best, rng_for(f"size {px} best")),
            }
        )
    return rows


def spread(rates: list[float]) -> dict:
    """Lowest, median and highest of per-patch success rates."""
    return {"lowest": rounded(min(rates)), "median": rounded(np.median(rates)), "highest": rounded(max(rates))}


def kind_figures(results, kinds: np.ndarray, correct, names: dict, b: int, static, sides, seed: int) -> dict:
    """Per kind of patch (KINDS, those present): what it is, how many, its patches' outcomes pooled at each
    placement (bootstrap intervals seeded from seed, the pair and the kind), the spread of its patches'
    static rates, and its rates by size. names: {a, b} class names; static: (size, corner) indices."""
    figures = {}
    for kind, said in KINDS.items():
        mine = np.flatnonzero(kinds == kind)
        if not len(mine):
            continue

        def rng_for(figure: str, kind=kind):
            return np.random.default_rng(derive_seed(seed, "attack_interval", names["a"], names["b"], kind, figure))

        per_patch = static_flips(results, mine, correct, b, *static)[0].mean(axis=1)
        figures[kind] = {
            "said": said.format(**names),
            "patches": len(mine),
            **placement_outcomes(results, mine, correct, b, static, rng_for),
            "static_per_patch": spread(per_patch),
            "by_size": by_size(results, mine, correct, b, static[1], sides, rng_for),
        }
    return figures


def patch_figures(results, columns: dict, correct, b: int, static, sides) -> list:
    """Per patch (the patches file's columns): its kind and source, its outcomes at each placement and its
    rates by size (Wilson intervals)."""
    figures = []
    for p, kind in enumerate(columns["kind"]):
        lean = float(columns["lean"][p])
        figures.append(
            {
                "patch": p,
                "kind": str(kind),
                "cell": columns["cell"][p].tolist(),
                "lean": None if np.isnan(lean) else rounded(lean),
                "image_index": int(columns["image_index"][p]),
                "picture": str(columns["picture"][p]),
                **placement_outcomes(results, np.array([p]), correct, b, static, lambda _: None),
                "by_size": by_size(results, np.array([p]), correct, b, static[1], sides, lambda _: None),
            }
        )
    return figures


def described(kind: str, figures: dict, b_name: str) -> str:
    """One log line of a kind's figures: its success rates with their intervals, and p(b)."""

    def said(outcome: dict) -> str:
        low, high = outcome["interval"]
        return f"{outcome['flipped']}/{outcome['attacked']} ({outcome['success_rate']:.3f}, {low:.3f}–{high:.3f})"

    static, dynamic = figures["static"], figures["dynamic"]
    return (
        f"{kind:>12}: static {said(static)}, dynamic {said(dynamic)}, any placement "
        f"{figures['any_placement']['success_rate']:.3f}; p({b_name}) {static['p_b_before']:.3f} → "
        f"{static['p_b_after']:.3f} static, {dynamic['p_b_after']:.3f} dynamic"
    )
