"""An example user model: the CIFAR-10 ResNets of He et al. 2016 (section 4.2), in the layout of the
published checkpoints of github.com/akamaster/pytorch_resnet_cifar10 (config/cifar10-resnet32.yaml).

Three stages (`layer1`..`layer3`) of n basic blocks of widths 16, 32 and 64 (depth = 6n + 2); the
first block of layer2 and layer3 halves the resolution. Shortcuts have no parameters ("option A"):
where the shape changes, the input is subsampled and zero-padded with the new channels.

Used as `model: {kind: user, factory: "cifar_resnet:resnet32", python_path: [examples]}`.
"""

from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.subsample = stride != 1 or in_planes != planes
        self.pad_channels = (planes - in_planes) // 2

    def shortcut(self, x):
        if not self.subsample:
            return x
        # Every other pixel, and the new channels as zeros on both sides of the old ones.
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad_channels, self.pad_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64), start=1):
            blocks = []
            for block in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, 2 if stage > 1 and block == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean(dim=(2, 3)))


def resnet(depth: int = 32, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """in_channels: 1 for a network of grey images."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth {depth} is not 6n + 2 for some n ≥ 1 (20, 32, 44, 56, 110, ...)")
    return CifarResNet((depth - 2) // 6, num_classes, in_channels)


def resnet32(num_classes: int = 10) -> CifarResNet:
    return resnet(32, num_classes)
