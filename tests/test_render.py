import dataclasses

import numpy as np
import pytest
import torch

from activation_atlas.models.capture import forward_to_layers, resolve_layers
from activation_atlas.optvis import param as param_module
from activation_atlas.optvis.objectives import (
    centre_vectors,
    direction_objective,
    fidelity,
    objective_directions,
    whitening_matrix,
)
from activation_atlas.optvis.param import FourierImage, MacoImage, image_parameterisation, mean_amplitude_spectrum
from activation_atlas.optvis.render import RenderSettings, layer_centre, render_attempts, render_icons
from activation_atlas.optvis.stopping import StopRule
from activation_atlas.optvis.transforms import TransformSpec, apply_transforms, draw_transforms
from activation_atlas.runtime import RunError

SPEC = TransformSpec(pad=4, jitters=(1, 1), scale_base=0.998, scale_exponents=(20, 39), rotation_deg=10)


def settings(steps, attempts=1, batch_size=8, icon_size=32):
    return RenderSettings(
        icon_size=icon_size,
        steps=steps,
        attempts=attempts,
        lr=0.05,
        cossim_pow=4,
        batch_size=batch_size,
        transforms=SPEC,
    )


def cell_targets(model, dataset_images, layer, count, rng):
    """Means of a few real activations, as the binning stage makes them."""
    module = resolve_layers(model, [layer], [layer])
    with torch.no_grad():
        out = forward_to_layers(model, module, dataset_images)[layer]
    vectors = out[:, :, 1:-1, 1:-1].permute(0, 2, 3, 1).reshape(-1, out.shape[1]).numpy()
    order = np.argsort(vectors[:, rng.integers(vectors.shape[1])])
    return np.stack([vectors[order[-(i + 1) * 5 : len(order) - i * 5]].mean(0) for i in range(count)]), module


@pytest.fixture(scope="module")
def dataset_images(tiny_dataset):
    from activation_atlas.data.image_folder import load_batch, scan_image_folder

    folder = scan_image_folder(tiny_dataset / "train")
    return load_batch(folder, np.arange(0, len(folder), 3), 32)


def test_rendering_raises_the_objective_and_reaches_high_fidelity(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv3", 6, rng)
    before = render_icons(
        tiny_model, module, targets, [(i,) for i in range(6)], 0, settings(steps=1), log=lambda _: None
    )
    after = render_icons(
        tiny_model, module, targets, [(i,) for i in range(6)], 0, settings(steps=96), log=lambda _: None
    )
    assert (after.objective > before.objective).all()
    assert after.fidelity.mean() > 0.85, after.fidelity
    assert after.images.dtype == np.uint8 and after.images.shape == (6, 32, 32, 3)
    # The stored fidelity is that of the stored 8-bit icon.
    icons = torch.from_numpy(after.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        measured = fidelity(layer_centre(tiny_model, module, icons), torch.from_numpy(targets))
    np.testing.assert_allclose(measured.numpy(), after.fidelity, atol=1e-5)


def test_maco_rendering_raises_the_objective_with_the_datasets_amplitude(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv3", 4, rng)
    amplitude = mean_amplitude_spectrum(dataset_images).numpy()
    maco = dataclasses.replace(settings(steps=48), param="maco", lr=0.5)
    keys = [(i,) for i in range(4)]
    before = render_icons(
        tiny_model,
        module,
        targets,
        keys,
        0,
        dataclasses.replace(maco, steps=1),
        log=lambda _: None,
        amplitude=amplitude,
    )
    after = render_icons(tiny_model, module, targets, keys, 0, maco, log=lambda _: None, amplitude=amplitude)
    assert (after.objective > before.objective).all()
    assert after.fidelity.mean() > 0.8, after.fidelity


def test_an_icon_does_not_depend_on_its_batch(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 3, rng)
    keys = [(0, i) for i in range(3)]
    together = render_icons(tiny_model, module, targets, keys, 1, settings(steps=8, batch_size=3), log=lambda _: None)
    alone = render_icons(tiny_model, module, targets, keys, 1, settings(steps=8, batch_size=1), log=lambda _: None)
    assert np.abs(together.images.astype(int) - alone.images.astype(int)).max() <= 1


def test_icons_rendered_in_batch_aligned_chunks_are_bit_identical(tiny_model, dataset_images, rng):
    from activation_atlas.workflow.jobs import render_chunk_cells, render_chunk_count

    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 6, rng)
    keys = [(0, i) for i in range(6)]
    s = settings(steps=6, attempts=2, batch_size=4)
    whole = render_icons(tiny_model, module, targets, keys, 1, s, log=lambda _: None)
    # Two cells a job: 4 icon attempts, one whole batch each; the jobs as the workflow counts and slices them.
    n_jobs = render_chunk_count(6, 2, 2, 4, "conv2")
    assert n_jobs == 3 and render_chunk_count(7, 2, 2, 4, "conv2") == 4
    chunks = [render_chunk_cells(chunk, 2) for chunk in range(n_jobs)]
    parts = [render_icons(tiny_model, module, targets[c], keys[c], 1, s, log=lambda _: None) for c in chunks]
    for field in ("images", "objective", "fidelity", "attempt"):
        assert np.array_equal(getattr(whole, field), np.concatenate([getattr(p, field) for p in parts]))
    assert render_chunk_cells(None, 2) == slice(None) and render_chunk_count(6, None, 2, 4, "conv2") == 1
    with pytest.raises(ValueError, match="multiple of batch_size"):
        render_chunk_count(6, 3, 1, 4, "conv2")


def test_the_best_attempt_is_kept(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 2, rng)
    keys = [(5, i) for i in range(2)]
    three = render_icons(tiny_model, module, targets, keys, 2, settings(steps=6, attempts=3), log=lambda _: None)
    one = render_icons(tiny_model, module, targets, keys, 2, settings(steps=6, attempts=1), log=lambda _: None)
    assert (three.objective >= one.objective - 1e-6).all()
    assert set(three.attempt.tolist()) <= {0, 1, 2}


NO_TRANSFORMS = TransformSpec(pad=0, jitters=(), scale_base=1.0, scale_exponents=(0, 0), rotation_deg=0)


def test_a_stopped_attempt_is_the_attempt_run_for_its_steps(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 3, rng)
    keys = [(2, i) for i in range(3)]
    still = dataclasses.replace(settings(steps=40, attempts=2, batch_size=6), transforms=NO_TRANSFORMS)
    # No gain is enough: every attempt stops at its second check, after 2 windows of 4 steps.
    stopped = render_attempts(
        tiny_model,
        module,
        targets,
        keys,
        3,
        dataclasses.replace(still, stop=StopRule(window=4, min_gain=10.0)),
        log=lambda _: None,
    )
    short = render_attempts(
        tiny_model, module, targets, keys, 3, dataclasses.replace(still, steps=8), log=lambda _: None
    )
    assert (stopped.steps == 8).all() and not stopped.dropped.any()
    # Held where it stopped, though Adam's momentum goes on: the same images as 8 steps and no rule.
    assert np.array_equal(stopped.images, short.images)
    assert stopped.best().steps.tolist() == [16, 16, 16]


def test_an_attempt_stops_when_its_cosine_levels_off(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 4, rng)
    keys = [(3, i) for i in range(4)]
    full = settings(steps=96, attempts=1, batch_size=4)
    stopping = dataclasses.replace(full, stop=StopRule(window=8, min_gain=0.01))
    every_step = render_icons(tiny_model, module, targets, keys, 4, full, log=lambda _: None)
    early = render_icons(tiny_model, module, targets, keys, 4, stopping, log=lambda _: None)
    assert (early.steps < 96).all() and (early.steps % 8 == 0).all() and (early.steps >= 16).all()
    assert early.fidelity.mean() > every_step.fidelity.mean() - 0.05


def test_attempts_trailing_the_best_are_dropped_and_never_kept(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 3, rng)
    keys = [(4, i) for i in range(3)]
    rule = StopRule(window=4, min_gain=-1.0, prune_at=8, prune_margin=0.0)  # only the best goes on
    attempts = render_attempts(
        tiny_model,
        module,
        targets,
        keys,
        5,
        dataclasses.replace(settings(steps=24, attempts=3, batch_size=6), stop=rule),
        log=lambda _: None,
    )
    assert (attempts.dropped.sum(axis=1) == 2).all()
    assert (attempts.steps[attempts.dropped] == 8).all() and (attempts.steps[~attempts.dropped] == 24).all()
    kept = attempts.best()
    assert not attempts.dropped[np.arange(3), kept.attempt].any()
    assert kept.steps.tolist() == [24 + 8 + 8] * 3


def test_a_stopping_rule_does_not_depend_on_the_batch(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 3, rng)
    keys = [(6, i) for i in range(3)]
    rule = StopRule(window=4, min_gain=0.01, prune_at=8, prune_margin=0.02)
    base = dataclasses.replace(settings(steps=32, attempts=2), stop=rule)
    alone = render_attempts(
        tiny_model, module, targets, keys, 7, dataclasses.replace(base, batch_size=2), log=lambda _: None
    )
    together = render_attempts(
        tiny_model, module, targets, keys, 7, dataclasses.replace(base, batch_size=6), log=lambda _: None
    )
    assert np.array_equal(alone.steps, together.steps) and np.array_equal(alone.dropped, together.dropped)
    assert np.abs(alone.images.astype(int) - together.images.astype(int)).max() <= 1


def test_icons_with_a_stopping_rule_are_bit_identical_run_to_run_and_chunk_to_chunk(tiny_model, dataset_images, rng):
    from activation_atlas.workflow.jobs import render_chunk_cells

    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 6, rng)
    keys = [(7, i) for i in range(6)]
    s = dataclasses.replace(
        settings(steps=32, attempts=2, batch_size=4),
        stop=StopRule(window=4, min_gain=0.01, prune_at=8, prune_margin=0.02),
    )
    whole = render_icons(tiny_model, module, targets, keys, 1, s, log=lambda _: None)
    again = render_icons(tiny_model, module, targets, keys, 1, s, log=lambda _: None)
    parts = [
        render_icons(tiny_model, module, targets[c], keys[c], 1, s, log=lambda _: None)
        for c in (render_chunk_cells(chunk, 2) for chunk in range(3))
    ]
    assert whole.steps.sum() < 6 * 2 * 32  # the rule stopped some attempts
    for field in ("images", "objective", "fidelity", "attempt", "steps"):
        assert np.array_equal(getattr(whole, field), getattr(again, field)), field
        assert np.array_equal(getattr(whole, field), np.concatenate([getattr(p, field) for p in parts])), field


def test_a_trace_holds_every_steps_cosines_and_the_icons_on_the_way(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 2, rng)
    keys = [(8, i) for i in range(2)]
    s = settings(steps=12, attempts=2, batch_size=4)
    traced = render_attempts(tiny_model, module, targets, keys, 9, s, log=lambda _: None, trace_every=4)
    plain = render_attempts(tiny_model, module, targets, keys, 9, s, log=lambda _: None)
    assert plain.trace is None and np.array_equal(traced.images, plain.images)
    assert traced.trace.cosines.shape == (2, 2, 12) and traced.trace.snapshots.shape == (2, 2, 3, 32, 32, 3)
    assert np.array_equal(traced.trace.snapshots[:, :, -1], traced.images)
    eight = render_attempts(
        tiny_model,
        module,
        targets,
        keys,
        9,
        dataclasses.replace(s, transforms=NO_TRANSFORMS),
        log=lambda _: None,
        trace_every=4,
    )
    short = render_attempts(
        tiny_model,
        module,
        targets,
        keys,
        9,
        dataclasses.replace(s, transforms=NO_TRANSFORMS, steps=8),
        log=lambda _: None,
    )
    assert np.array_equal(eight.trace.snapshots[:, :, 1], short.images)
    assert (eight.trace.cosines[..., -4:].mean(-1) > eight.trace.cosines[..., :4].mean(-1)).all()


def test_dropping_attempts_needs_whole_icons_in_a_batch(tiny_model, dataset_images, rng):
    targets, module = cell_targets(tiny_model, dataset_images, "conv2", 1, rng)
    rule = StopRule(window=4, min_gain=0.0, prune_at=8)
    with pytest.raises(RunError, match=r"batch_size \(4\) must be a multiple of attempts \(3\)"):
        render_icons(
            tiny_model,
            module,
            targets,
            [(0,)],
            0,
            dataclasses.replace(settings(steps=16, attempts=3, batch_size=4), stop=rule),
            log=lambda _: None,
        )


def test_objective_prefers_the_direction_and_penalises_angle():
    direction = torch.tensor([[1.0, 0.0]])
    aligned = direction_objective(torch.tensor([[2.0, 0.0]]), direction, cossim_pow=2)
    oblique = direction_objective(torch.tensor([[2.0, 2.0]]), direction, cossim_pow=2)
    assert aligned.item() == pytest.approx(2.0, rel=1e-5)
    assert oblique.item() == pytest.approx(2.0 * 0.5, rel=1e-5)  # dot 2, cos² = 1/2
    # Below cos 0.1 the penalty stops growing, so a bad start still has a gradient.
    away = direction_objective(torch.tensor([[-1.0, 0.05]]), direction, cossim_pow=2)
    assert away.item() == pytest.approx(-1.0 * 0.01, rel=1e-3)


def test_whitening_equalises_channel_scales(rng):
    acts = rng.normal(size=(4000, 3)) * np.array([1.0, 10.0, 100.0])
    s = whitening_matrix(acts, ridge=0.0)
    np.testing.assert_allclose(s @ (acts.T @ acts / len(acts)), np.eye(3), atol=1e-4)
    directions = objective_directions(torch.tensor([[1.0, 1.0, 1.0]]), torch.from_numpy(s))
    # Whitening favours the rare (small-variance) channel.
    assert directions[0, 0] > directions[0, 1] > directions[0, 2]


def test_centre_position_of_even_and_odd_grids():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5)
    assert centre_vectors(x)[:, 0].tolist() == [x[0, 0, 2, 2].item(), x[1, 0, 2, 2].item()]


def test_identity_transform_leaves_the_image_unchanged(rng):
    images = torch.rand(2, 3, 16, 16)
    identity = torch.tensor([[0.0, 0.0, 1.0, 0.0]] * 2)
    np.testing.assert_allclose(apply_transforms(images, identity, pad=4), images, atol=1e-5)


def test_shift_moves_the_image_and_reveals_the_grey_pad():
    images = torch.rand(1, 3, 16, 16)
    shifted = apply_transforms(images, torch.tensor([[2.0, 0.0, 1.0, 0.0]]), pad=4)
    np.testing.assert_allclose(shifted[..., :14], images[..., 2:], atol=1e-5)
    np.testing.assert_allclose(shifted[..., 14:], 0.5, atol=1e-5)


def test_transform_draws_respect_the_spec(rng):
    params = draw_transforms(rng, SPEC, 500)
    assert np.abs(params[:, :2]).max() <= 2 and np.abs(params[:, :2]).max() == 2
    assert params[:, 2].min() >= 0.998**39 - 1e-6 and params[:, 2].max() <= 0.998**20 + 1e-6
    assert np.abs(params[:, 3]).max() <= np.deg2rad(10) + 1e-6


def test_fourier_image_is_in_range_and_starts_near_grey(rng):
    image = FourierImage([rng], 24).images()
    assert image.shape == (1, 3, 24, 24)
    assert 0.4 < image.min().item() and image.max().item() < 0.6


def test_maco_image_with_an_images_own_phase_is_that_image_standardised(rng):
    """The amplitude spectrum and the phase parameterisation use the same colour space and FFT: an
    image's own amplitude and phase give it back (standardised, through the sigmoid)."""
    x = torch.from_numpy(rng.random((1, 3, 16, 16)).astype(np.float32))
    image = MacoImage([rng], 16, mean_amplitude_spectrum(x))
    decorrelated = torch.einsum(
        "bchw,dc->bdhw", x.double(), torch.linalg.inv(torch.from_numpy(param_module.DECORRELATED_TO_RGB).double())
    )
    image.phase.data = torch.angle(torch.fft.rfft2(decorrelated, norm="ortho")).float()
    expected = torch.sigmoid((x - x.mean()) / (x.std() + 1e-4))
    torch.testing.assert_close(image.images(), expected, atol=2e-4, rtol=0)
    assert image.parameters == [image.phase]


def test_maco_needs_a_spectrum_of_the_icon_size(rng):
    with pytest.raises(ValueError, match="needs the dataset's amplitude spectrum"):
        image_parameterisation("maco", [rng], 16, None)
    with pytest.raises(ValueError, match=r"shape \(3, 8, 5\) does not fit 16 px icons"):
        image_parameterisation("maco", [rng], 16, torch.ones(3, 8, 5))
    with pytest.raises(ValueError, match="unknown render.param 'pixels'; valid: fourier, maco"):
        image_parameterisation("pixels", [rng], 16, None)
