"""InceptionV1 as the Activation Atlas paper used it: the TensorFlow "inception5h" GoogLeNet.

Module names follow the published PyTorch state dict `inception5h.pth` (`<name>_pre_relu_conv`,
`softmax2_pre_activation_matmul`), so it loads with strict=True. TensorFlow's "SAME" padding is
reproduced exactly: symmetric pads as the layers' own padding, the stem's asymmetric ones
explicitly. Every post-ReLU output an atlas can be made of — conv2d0..2, the mixed blocks and their
four branches (e.g. mixed4c_3x3) — passes through a parameter-free nn.Identity of that name, so
forward hooks can capture it by name.

The forward pass takes RGB in [0, 1] and scales it to the network's own input range [-117, 138].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# (name, input channels, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce)
INCEPTION_BLOCKS = (
    ("mixed3a", 192, 64, 96, 128, 16, 32, 32),
    ("mixed3b", 256, 128, 128, 192, 32, 96, 64),
    ("mixed4a", 480, 192, 96, 204, 16, 48, 64),
    ("mixed4b", 508, 160, 112, 224, 24, 64, 64),
    ("mixed4c", 512, 128, 128, 256, 24, 64, 64),
    ("mixed4d", 512, 112, 144, 288, 32, 64, 64),
    ("mixed4e", 528, 256, 160, 320, 32, 128, 128),
    ("mixed5a", 832, 256, 160, 320, 48, 128, 128),
    ("mixed5b", 832, 384, 192, 384, 48, 128, 128),
)
BRANCHES = ("1x1", "3x3", "5x5", "pool_reduce")
NUM_CLASSES = 1008
# Pixel in [0, 1] → the range the TensorFlow graph was trained on.
INPUT_SCALE, INPUT_OFFSET = 255.0, -117.0


class RedirectedReLU(torch.autograd.Function):
    """ReLU whose backward pass also lets through gradients that would raise a negative input
    (so that optimisation from a random image is not stuck on dead units); forward is unchanged."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # Descent moves x by −grad: a negative gradient pushes a negative input up, towards activity.
        return torch.where((x > 0) | (grad < 0), grad, torch.zeros_like(grad))


class ReLU(nn.Module):
    """A ReLU that switches to the redirected gradient while `redirect` is set."""

    def __init__(self):
        super().__init__()
        self.redirect = False

    def forward(self, x):
        return RedirectedReLU.apply(x) if self.redirect and torch.is_grad_enabled() else F.relu(x)


class LocalResponseNorm(nn.Module):
    """torch's local_response_norm with the graph's beta of 0.5, x / √(k + alpha/size · Σ x² over `size`
    neighbouring channels), the window sums taken as a 1×1 convolution by a fixed band matrix: one GEMM
    forward and backward, 2-3× faster on batches than torch's 3-D average pool (the same at batch 1)."""

    def __init__(self, channels: int, size: int = 9, alpha: float = 9.99999974738e-05, k: float = 1.0):
        super().__init__()
        offset = torch.arange(channels)[None, :] - torch.arange(channels)[:, None]
        window = (offset >= -(size // 2)) & (offset <= (size - 1) // 2)
        # Not in the state dict: the published weights load with strict=True.
        self.register_buffer("band", (window.float() * (alpha / size))[:, :, None, None], persistent=False)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.k + F.conv2d(x * x, self.band)).rsqrt()


def same_max_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3×3 stride-2 "SAME" max pool: ceil_mode keeps the last, partial window, which is
    the window TensorFlow pads by one on the right and bottom."""
    return F.max_pool2d(x, 3, stride=2, ceil_mode=True)


class InceptionV1(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d0_pre_relu_conv = nn.Conv2d(3, 64, 7, stride=2)
        self.conv2d1_pre_relu_conv = nn.Conv2d(64, 64, 1)
        self.conv2d2_pre_relu_conv = nn.Conv2d(64, 192, 3, padding=1)
        for name, cin, c1, c3r, c3, c5r, c5, cp in INCEPTION_BLOCKS:
            setattr(self, f"{name}_1x1_pre_relu_conv", nn.Conv2d(cin, c1, 1))
            setattr(self, f"{name}_3x3_bottleneck_pre_relu_conv", nn.Conv2d(cin, c3r, 1))
            setattr(self, f"{name}_5x5_bottleneck_pre_relu_conv", nn.Conv2d(cin, c5r, 1))
            setattr(self, f"{name}_pool_reduce_pre_relu_conv", nn.Conv2d(cin, cp, 1))
            setattr(self, f"{name}_3x3_pre_relu_conv", nn.Conv2d(c3r, c3, 3, padding=1))
            setattr(self, f"{name}_5x5_pre_relu_conv", nn.Conv2d(c5r, c5, 5, padding=2))
        self.softmax2_pre_activation_matmul = nn.Linear(1024, NUM_CLASSES)
        for name in self.layer_names():
            setattr(self, name, nn.Identity())
        self.relu = ReLU()
        self.lrn0, self.lrn2 = LocalResponseNorm(64), LocalResponseNorm(192)

    @staticmethod
    def layer_names() -> tuple[str, ...]:
        names = ["conv2d0", "conv2d1", "conv2d2"]
        for block in INCEPTION_BLOCKS:
            names += [block[0]] + [f"{block[0]}_{branch}" for branch in BRANCHES]
        return tuple(names)

    def set_redirected_relu(self, enabled: bool) -> None:
        self.relu.redirect = enabled

    def conv_relu(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.relu(getattr(self, f"{name}_pre_relu_conv")(x))

    def block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        branch_1x1 = getattr(self, f"{name}_1x1")(self.conv_relu(f"{name}_1x1", x))
        b3 = self.conv_relu(f"{name}_3x3_bottleneck", x)
        branch_3x3 = getattr(self, f"{name}_3x3")(self.conv_relu(f"{name}_3x3", b3))
        b5 = self.conv_relu(f"{name}_5x5_bottleneck", x)
        branch_5x5 = getattr(self, f"{name}_5x5")(self.conv_relu(f"{name}_5x5", b5))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        branch_pool = getattr(self, f"{name}_pool_reduce")(self.conv_relu(f"{name}_pool_reduce", pooled))
        return getattr(self, name)(torch.cat([branch_1x1, branch_3x3, branch_5x5, branch_pool], dim=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB → mixed5b."""
        x = x * INPUT_SCALE + INPUT_OFFSET
        x = self.conv2d0(self.conv_relu("conv2d0", F.pad(x, (2, 3, 2, 3))))
        x = same_max_pool(x)
        x = self.lrn0(x)
        x = self.conv2d1(self.conv_relu("conv2d1", x))
        x = self.conv2d2(self.conv_relu("conv2d2", x))
        x = self.lrn2(x)
        x = same_max_pool(x)
        for name in ("mixed3a", "mixed3b"):
            x = self.block(name, x)
        x = same_max_pool(x)
        for name in ("mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e"):
            x = self.block(name, x)
        x = same_max_pool(x)
        for name in ("mixed5a", "mixed5b"):
            x = self.block(name, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1008 logits (softmax2_pre_activation). The graph's 7×7 average pool covers all of
        mixed5b at 224 px; a global average is the same there and also defined at other sizes."""
        return self.softmax2_pre_activation_matmul(self.features(x).mean(dim=(2, 3)))
