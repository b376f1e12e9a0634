"""A vision transformer laid out as vit-pytorch's classic `ViT` is (module names and head included), as a
`user` model: `factory: "vit_pytorch_layout:vit"`, `python_path: [examples]`.

Its head is the one most ViT code has: the class token (`pool="cls"`) or the mean of all tokens
(`pool="mean"`) of the last block, then `to_latent` (an Identity), then `mlp_head`, a LayerNorm and a
Linear. Its blocks are pre-norm with no final norm, so the logits read the last block only through
`mlp_head.0`, a norm applied to a slice or a pooling of the block's output.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in self.to_qkv(self.norm(x)).chunk(3, -1))
        weights = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        return self.to_out((weights @ v).transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)]) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, feed_forward in self.layers:
            x = attention(x) + x
            x = feed_forward(x) + x
        return x


class ViT(nn.Module):
    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        pool: str = "cls",
        channels: int = 3,
        dim_head: int = 64,
    ):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', not {pool!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.pool = patch_size, pool
        patch_dim = channels * patch_size * patch_size
        self.to_patch_embedding = nn.Sequential(nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, (image_size // patch_size) ** 2 + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim)
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def patches(self, img: torch.Tensor) -> torch.Tensor:
        """(B, h·w, p·p·c): the image's patches row by row, each flattened row, column, channel."""
        p = self.patch_size
        grid = img.unfold(2, p, p).unfold(3, p, p)  # (B, c, h, w, p, p)
        return grid.permute(0, 2, 3, 4, 5, 1).flatten(3).flatten(1, 2)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.to_patch_embedding(self.patches(img))
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embedding
        x = self.transformer(x)
        x = x.mean(dim=1) if self.pool == "mean" else x[:, 0]
        return self.mlp_head(self.to_latent(x))


def vit(
    image_size: int = 32,
    patch_size: int = 8,
    num_classes: int = 10,
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int = 128,
    pool: str = "cls",
    channels: int = 3,
    dim_head: int = 16,
) -> ViT:
    return ViT(image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool, channels, dim_head)
