"""Training the networks the workflow trains itself (the demo CNN and the demo ViT) on the generated
dataset, and their top-1 accuracy."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    log=print,
) -> dict:
    """Train in place with Adam and a cosine schedule; images are uint8 (N, 3, H, W).

    Light augmentation (flips, small shifts) from a generator seeded by `seed` keeps the network from
    memorising the backgrounds. Returns the per-epoch training loss and the wall time.
    """
    generator = torch.Generator().manual_seed(seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        total, seen = 0.0, 0
        for first in range(0, len(images), batch_size):
            batch = order[first : first + batch_size]
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
        log(f"epoch {epoch + 1}/{epochs}: loss {total / seen:.4f} ({time.perf_counter() - start:.1f} s)")
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
        x = images[first : first + batch_size].float().div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last)
        correct += (model(x).argmax(1) == labels[first : first + batch_size]).sum().item()
    return correct / len(images)
