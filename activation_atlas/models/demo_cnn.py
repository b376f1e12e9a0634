"""The demo network: a small CNN with named stages, trained by the workflow on the generated dataset."""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F

from activation_atlas.runtime import RunError


def conv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3×3 → batch norm → ReLU → 2×2 max-pool: the stage's output is its pooled activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
    )


class DemoCNN(nn.Module):
    """conv1 … convN stages, global average pooling and a linear classifier (`logits`).

    The layers an atlas can be made of are the stage names: conv1 (H/2), conv2 (H/4), ...
    """

    def __init__(self, channels=(32, 64, 128, 128), num_classes: int = 10):
        super().__init__()
        if len(channels) < 1:
            raise RunError("the demo CNN needs at least one stage")
        widths = (3, *channels)
        for k in range(len(channels)):
            self.add_module(f"conv{k + 1}", conv_stage(widths[k], widths[k + 1]))
        self.stage_names = tuple(f"conv{k + 1}" for k in range(len(channels)))
        self.logits = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.logits(x.mean(dim=(2, 3)))


def fold_batch_norm(model: DemoCNN) -> DemoCNN:
    """The network with each eval-mode batch norm folded into the convolution before it.

    Same function up to float rounding, one layer fewer per stage: extraction and rendering, which
    never train, run 15-20 % faster. The stage names (conv1, ...) stay the same.
    """
    for name in model.stage_names:
        stage = getattr(model, name)
        conv, bn = stage[0], stage[1]
        if isinstance(bn, nn.Identity):
            continue
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding,
                          bias=True)
        with torch.no_grad():
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            fused.bias.copy_(bn.bias - bn.running_mean * scale)
        stage[0], stage[1] = fused, nn.Identity()
    return model


def train_demo_cnn(model: DemoCNN, images: torch.Tensor, labels: torch.Tensor, *, epochs: int,
                   batch_size: int, lr: float, seed: int, log=print) -> dict:
    """Train in place with Adam and a cosine schedule; images are uint8 (N, 3, H, W).

    Light augmentation (flips, small shifts) from a generator seeded by `seed` keeps the network from
    memorising the backgrounds. Returns the per-epoch training loss and the wall time.
    """
    generator = torch.Generator().manual_seed(seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs,
                                                   steps_per_epoch=steps_per_epoch)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        total, seen = 0.0, 0
        for first in range(0, len(images), batch_size):
            batch = order[first:first + batch_size]
            x = augment(images[batch].float().div_(255.0), generator)
            x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        history.append(total / seen)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / seen:.4f} "
            f"({time.perf_counter() - start:.1f} s)")
    model.eval()
    return {"loss_per_epoch": history, "seconds": time.perf_counter() - start}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and circular shifts of up to 4 pixels, drawn from `generator`."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dy, dx = torch.randint(-4, 5, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy on uint8 images."""
    model.eval()
    correct = 0
    for first in range(0, len(images), batch_size):
        x = images[first:first + batch_size].float().div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last)
        correct += (model(x).argmax(1) == labels[first:first + batch_size]).sum().item()
    return correct / len(images)
