"""benchmarks/quality_per_step.py judges stopping rules on a recorded render: fed a trace's cosines, the
renderer's own StopTracker must stop and drop the attempts a render under the rule stops and drops."""

import dataclasses

import numpy as np
from test_render import NO_TRANSFORMS, cell_targets, dataset_images, settings  # noqa: F401 (a fixture)

from activation_atlas.optvis.render import render_attempts
from activation_atlas.optvis.stopping import StopRule
from benchmarks.quality_per_step import simulate_rule


def test_a_rule_simulated_on_a_trace_stops_where_the_rule_stops_a_render(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 4, rng)
    keys = [(9, i) for i in range(4)]
    plain = dataclasses.replace(settings(steps=48, attempts=2, batch_size=8), transforms=NO_TRANSFORMS)
    rule = {"window": 8, "min_gain": 0.005, "prune_at": 16, "prune_margin": 0.01}
    traced = render_attempts(tiny_model, module, targets, keys, 2, plain, log=lambda _: None, trace_every=8)
    steps, dropped = simulate_rule(rule, traced.trace.cosines, traced.trace.every)
    stopped = render_attempts(
        tiny_model,
        module,
        targets,
        keys,
        2,
        dataclasses.replace(plain, stop=StopRule.from_section(rule)),
        log=lambda _: None,
    )
    assert (steps < 48).any() and dropped.any()  # the rule acts here
    assert np.array_equal(steps, stopped.steps) and np.array_equal(dropped, stopped.dropped)
    # The snapshot at each attempt's last step is the icon the render kept for it.
    at = steps // 8 - 1
    snapshots = np.take_along_axis(traced.trace.snapshots, at[:, :, None, None, None, None], axis=2)[:, :, 0]
    assert np.abs(snapshots.astype(int) - stopped.images.astype(int)).max() <= 1
