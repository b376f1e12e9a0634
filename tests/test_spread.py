"""verify with a reference's spread over seeds: a run with another seed is judged by how far the
method's figures move from seed to seed; a run with the reference's seed by rounding, except the
figures fragile by construction; a figure outside the spread and its margin still differs."""

import json

from activation_atlas.checking.manifest import FORMAT
from activation_atlas.checking.spread import figure_spread, write_spread
from activation_atlas.checking.verify import DIFFERS, IDENTICAL, WITHIN, verify
from tools.spread_margin import figures_outside


def manifest(seed: int, agreement: float, rms: float, loss: float, digest: str = "a") -> dict:
    return {
        "format": FORMAT,
        "run": "r",
        "seed": seed,
        "files": {
            "atlas/l/metrics.json": {
                "sha256": digest * 64,
                "bytes": 1,
                "kind": "json",
                "figures": {"grids.10.cells_kept": 40, "grids.10.class_agreement": agreement},
            },
            "activations/l.h5": {
                "sha256": digest * 64,
                "bytes": 1,
                "kind": "activations",
                "figures": {"rows": 100, "channels": 8, "mean": 0.5, "rms": rms},
            },
            "model.json": {"sha256": digest * 64, "bytes": 1, "kind": "json", "figures": {"loss_per_epoch.0": loss}},
        },
    }


def statuses(tmp_path, run: dict, spread: bool = True) -> dict:
    reference = tmp_path / "reference" / "MANIFEST.json"
    reference.parent.mkdir(parents=True, exist_ok=True)
    seeds = [manifest(0, 0.50, 1.00, 1.50), manifest(1, 0.60, 1.10, 1.70), manifest(2, 0.55, 1.05, 1.60)]
    reference.write_text(json.dumps(seeds[0]))
    if spread:
        write_spread(reference.with_name("SPREAD.json"), seeds)
    (tmp_path / "run.json").write_text(json.dumps(run))
    checks, _ = verify(tmp_path / "run.json", reference)
    return {check.path: check.status for check in checks}


def test_the_spread_is_each_figures_range_over_the_seeds():
    spread = figure_spread([manifest(0, 0.5, 1.0, 1.5), manifest(1, 0.6, 1.1, 1.7)])
    assert spread["atlas/l/metrics.json"] == {"grids.10.cells_kept": [40, 40], "grids.10.class_agreement": [0.5, 0.6]}
    assert spread["model.json"] == {"loss_per_epoch.0": [1.5, 1.7]}


def test_another_seeds_run_is_judged_by_the_spread_and_its_margin(tmp_path):
    # Inside the seeds' range (widened by SPREAD_MARGIN widths and the rounding tolerance): reproduced.
    assert set(statuses(tmp_path, manifest(3, 0.64, 1.12, 1.75, "b")).values()) == {WITHIN}
    # Far outside it: a finding that did not reproduce.
    status = statuses(tmp_path, manifest(3, 0.95, 1.12, 1.75, "b"))
    assert status["atlas/l/metrics.json"] == DIFFERS and status["model.json"] == WITHIN


def test_the_references_seed_is_judged_by_rounding_but_fragile_figures_by_the_spread(tmp_path):
    # Another seed's training claimed under the reference's seed: the loss is judged by rounding and fails.
    status = statuses(tmp_path, manifest(0, 0.50, 1.00, 1.70, "b"))
    assert status["model.json"] == DIFFERS
    # A share over few cells moved by rounding beyond its tolerance, inside the seeds' range: accepted.
    status = statuses(tmp_path, manifest(0, 0.59, 1.00, 1.50, "b"))
    assert status["atlas/l/metrics.json"] == WITHIN and status["activations/l.h5"] == WITHIN
    # Without a spread, that same share differs.
    assert (
        statuses(tmp_path / "none", manifest(0, 0.59, 1.00, 1.50, "b"), spread=False)["atlas/l/metrics.json"] == DIFFERS
    )
    assert set(statuses(tmp_path, manifest(0, 0.50, 1.00, 1.50)).values()) == {IDENTICAL}


def test_leaving_one_seed_out_counts_its_figures_outside_the_others_spread_and_margin():
    seeds = [manifest(0, 0.50, 1.00, 1.50), manifest(1, 0.60, 1.10, 1.70, "b"), manifest(2, 0.55, 1.05, 1.60, "c")]
    # Seed 2 lies inside the range of seeds 0 and 1: nothing outside at any margin.
    assert figures_outside(seeds[2], seeds[:2], widths=0.5) == []
    # Seed 1 beside seeds 0 and 2: its RMS (1.10 against 1.00–1.05) and loss (1.70 against 1.50–1.60)
    # lie beyond the range and their rounding tolerance, its class agreement within that tolerance;
    # one width of margin takes them in.
    assert figures_outside(seeds[1], [seeds[0], seeds[2]], widths=0.0) == [
        "activations/l.h5:rms",
        "model.json:loss_per_epoch.0",
    ]
    assert figures_outside(seeds[1], [seeds[0], seeds[2]], widths=1.0) == []
    far = manifest(3, 0.80, 1.05, 1.60, "d")
    assert figures_outside(far, seeds[:2], widths=1.0) == ["atlas/l/metrics.json:grids.10.class_agreement"]
    assert figures_outside(far, seeds[:2], widths=2.0) == []
