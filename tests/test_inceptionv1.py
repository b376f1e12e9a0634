import json

import pytest
import torch

from activation_atlas.models.capture import forward_to_layers, resolve_layers
from activation_atlas.models.inceptionv1 import InceptionV1, RedirectedReLU
from tools.runs import REPO

REFERENCE = REPO.parent / "shared" / "reference"
SHAPES = REPO / "activation_atlas" / "models" / "inceptionv1_state_dict_shapes.json"
CHANNELS = {
    "mixed3a": (256, 28),
    "mixed3b": (480, 28),
    "mixed4a": (508, 14),
    "mixed4b": (512, 14),
    "mixed4c": (512, 14),
    "mixed4d": (528, 14),
    "mixed4e": (832, 14),
    "mixed5a": (832, 7),
    "mixed5b": (1024, 7),
}


def published_shapes():
    return json.loads(SHAPES.read_text())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return InceptionV1().eval()


def test_a_state_dict_with_the_published_keys_and_shapes_loads_strict(model):
    shapes = published_shapes()
    assert len(shapes) == 116
    generator = torch.Generator().manual_seed(1)
    state = {key: torch.randn(shape, generator=generator) * 0.01 for key, shape in shapes.items()}
    fresh = InceptionV1()
    fresh.load_state_dict(state, strict=True)
    assert {k: list(v.shape) for k, v in fresh.state_dict().items()} == shapes


def test_mixed_layers_have_the_documented_channels_and_sizes_and_1008_logits(model):
    names = list(CHANNELS) + ["conv2d0", "conv2d2", "mixed4c_3x3", "mixed5b_pool_reduce"]
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        outputs = forward_to_layers(model, resolve_layers(model, names, model.layer_names()), x)
        logits = model(x)
    for name, (channels, size) in CHANNELS.items():
        assert tuple(outputs[name].shape) == (2, channels, size, size), name
        assert outputs[name].min() >= 0  # post-ReLU
    assert tuple(outputs["conv2d0"].shape) == (2, 64, 112, 112)
    assert tuple(outputs["conv2d2"].shape) == (2, 192, 56, 56)
    assert tuple(outputs["mixed4c_3x3"].shape) == (2, 256, 14, 14)
    assert tuple(outputs["mixed5b_pool_reduce"].shape) == (2, 128, 7, 7)
    assert tuple(logits.shape) == (2, 1008)


def test_layers_work_at_icon_sizes(model):
    with torch.no_grad():
        out = forward_to_layers(
            model, resolve_layers(model, ["mixed4d"], model.layer_names()), torch.rand(1, 3, 80, 80)
        )
    assert out["mixed4d"].shape[1] == 528 and out["mixed4d"].shape[2] == 5


def test_input_is_scaled_to_the_tensorflow_range(model):
    # conv2d0 of a uniform image: the first convolution sees pixel·255 − 117.
    x = torch.full((1, 3, 32, 32), 0.5)
    conv = model.conv2d0_pre_relu_conv
    with torch.no_grad():
        expected = torch.relu(conv(torch.nn.functional.pad(x * 255 - 117, (2, 3, 2, 3))))
        actual = forward_to_layers(model, resolve_layers(model, ["conv2d0"], model.layer_names()), x)
    torch.testing.assert_close(actual["conv2d0"], expected)


def test_redirected_relu_passes_gradients_that_raise_negative_inputs():
    x = torch.tensor([-1.0, -1.0, 2.0], requires_grad=True)
    y = RedirectedReLU.apply(x)
    assert y.tolist() == [0.0, 0.0, 2.0]
    y.backward(torch.tensor([-1.0, 1.0, 3.0]))
    # Input 0 is negative and its gradient is negative (descent raises it): let through.
    assert x.grad.tolist() == [-1.0, 0.0, 3.0]


def test_redirection_changes_only_the_backward_pass(model):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    module = resolve_layers(model, ["mixed3a"], model.layer_names())
    plain = forward_to_layers(model, module, x)["mixed3a"]
    (-plain[:, 5].sum()).backward()
    plain_grad = x.grad.clone()
    x.grad = None
    model.set_redirected_relu(True)
    try:
        redirected = forward_to_layers(model, module, x)["mixed3a"]
        (-redirected[:, 5].sum()).backward()
    finally:
        model.set_redirected_relu(False)
    torch.testing.assert_close(redirected, plain)
    assert not torch.equal(x.grad, plain_grad)


def test_shipped_labels_match_the_reference():
    shipped = (REPO / "activation_atlas" / "models" / "inceptionv1_labels.txt").read_text().splitlines()
    assert shipped[0] == "dummy" and len(shipped) == 1001
    if REFERENCE.exists():
        assert shipped == (REFERENCE / "inceptionv1_labels.txt").read_text().splitlines()


def test_local_response_norm_equals_torchs():
    from activation_atlas.models.inceptionv1 import LocalResponseNorm

    x = (torch.rand(2, 70, 9, 9) * 300).requires_grad_(True)
    reference = torch.nn.functional.local_response_norm(x, size=9, alpha=9.99999974738e-05, beta=0.5, k=1)
    ours = LocalResponseNorm(70)(x)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-3)
    (grad_ours,) = torch.autograd.grad(ours.sum(), x)
    (grad_reference,) = torch.autograd.grad(reference.sum(), x)
    torch.testing.assert_close(grad_ours, grad_reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [5, 6, 7, 8, 9, 10])
def test_same_max_pool_is_tensorflows_padded_pool(size):
    from activation_atlas.models.inceptionv1 import same_max_pool

    x = torch.randn(1, 3, size, size)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1), value=float("-inf"))
    torch.testing.assert_close(same_max_pool(x), torch.nn.functional.max_pool2d(padded, 3, stride=2))
