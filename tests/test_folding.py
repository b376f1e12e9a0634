"""Batch norms folded into their convolutions for rendering (models/folding.py), on the published
CIFAR-10 ResNet-32 and on networks made to break the pairing."""

import pytest
import torch
import yaml
from torch import nn

from activation_atlas.data.image_folder import load_all, scan_image_folder
from activation_atlas.models.capture import forward_to_layers
from activation_atlas.models.folding import conv_batch_norm_pairs, fold_batch_norms
from activation_atlas.models.loading import load_model

RESNET32 = "tests/data/cifar10-resnet32"


def norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def with_running_statistics(model: nn.Module) -> nn.Module:
    """Eval mode, with batch norm statistics far from 0 and 1, so a wrong fold shows."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator))
            module.running_var.copy_(torch.rand(c, generator=generator) * 3 + 0.2)
            with torch.no_grad():
                module.weight.copy_(torch.randn(c, generator=generator))
                module.bias.copy_(torch.randn(c, generator=generator))
    return model.eval()


def assert_same_up_to_rounding(after, before):
    """Equal within 1e-5 of the tensor's largest magnitude, several times float rounding."""
    assert float((after - before).abs().max()) <= 1e-5 * float(before.abs().max())


def outputs(model, names, x):
    with torch.no_grad():
        read = {name: forward_to_layers(model, {name: model.get_submodule(name)}, x)[name] for name in names}
        return model(x), read


def test_the_published_resnet32_folds_every_norm_and_keeps_its_layers_and_logits():
    config = yaml.safe_load(open("config/cifar10-resnet32.yaml"))
    model = load_model(config["model"], f"{RESNET32}/resnet32-d509ac18.th", 10)
    folder = scan_image_folder(f"{RESNET32}/images")
    x = load_all(folder, 32)[::30]  # one photograph per class
    said = []
    folded = fold_batch_norms(model, ["layer2"], x[:1], said.append)
    assert norms(model) == 31 and norms(folded) == 0
    assert said == [
        f"31 batch norms folded into the convolutions before them (largest relative change "
        f"{said[0].split('change ')[1]}"
    ]
    logits, read = outputs(model, ["layer1", "layer2", "layer3"], x)
    folded_logits, folded_read = outputs(folded, ["layer1", "layer2", "layer3"], x)
    assert_same_up_to_rounding(folded_logits, logits)
    for name in read:
        assert_same_up_to_rounding(folded_read[name], read[name])
    assert (folded_logits.argmax(1) == logits.argmax(1)).all()


def test_a_convolution_that_is_read_keeps_its_norm():
    model = with_running_statistics(
        nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))
    )
    x = torch.rand(2, 3, 12, 12)
    folded = fold_batch_norms(model, ["0"], x[:1], print)
    assert isinstance(folded[1], nn.BatchNorm2d) and isinstance(folded[4], nn.Identity)
    (before,), (after,) = (outputs(m, ["0"], x)[1].values() for m in (model, folded))
    assert_same_up_to_rounding(after, before)  # the pre-norm activation, not normalised
    assert_same_up_to_rounding(folded(x).detach(), model(x).detach())


class ConvReadTwice(nn.Module):
    """A convolution whose output feeds its norm and, unnormalised, a skip connection."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.norm(y) + y


def test_a_fold_that_changes_the_function_is_refused_and_said():
    model = with_running_statistics(ConvReadTwice())
    x = torch.rand(1, 3, 8, 8)
    assert conv_batch_norm_pairs(model, x) == [("conv", "norm")]
    said = []
    assert fold_batch_norms(model, [], x, said.append) is model
    assert said and said[0].startswith("batch norms not folded: the folded network differs from the original by")


@pytest.mark.parametrize(
    "norm",
    [nn.BatchNorm2d(4, track_running_stats=False), nn.BatchNorm2d(4).train()],
    ids=["batch statistics", "training mode"],
)
def test_a_norm_that_uses_its_batch_statistics_is_not_paired(norm):
    model = nn.Sequential(nn.Conv2d(3, 4, 1).eval(), norm)
    assert conv_batch_norm_pairs(model, torch.rand(2, 3, 4, 4)) == []


def test_a_norm_after_something_else_is_not_paired():
    model = with_running_statistics(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)))
    assert conv_batch_norm_pairs(model, torch.rand(1, 3, 4, 4)) == []
    assert fold_batch_norms(model, [], torch.rand(1, 3, 4, 4), print) is model
