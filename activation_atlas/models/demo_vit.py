"""The demo vision transformer: a small torchvision ViT trained by the workflow on the generated dataset.

Its module names are torchvision's (`encoder.layers.encoder_layer_K` are the blocks), and its blocks give
(B, 1 + h·w, C) token sequences: a class token, then the patch grid. By default its head reads the mean
of the last block's patch tokens (timm's global_pool='avg'): every block's patch tokens then carry what
the classifier uses, the last block's included, so an atlas of any block's patches means something.
With `readout: class_token` its head reads the class token, as torchvision's, timm's ViT and DeiT do:
the last block's patch tokens then reach no logit, and that block is read as its class token.
"""

from __future__ import annotations

import torch
from torchvision.models.vision_transformer import VisionTransformer

from activation_atlas.runtime import RunError


class DemoViT(VisionTransformer):
    def __init__(self, readout: str = "mean_patches", **vit):
        super().__init__(**vit)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self._process_input(x)
        tokens = torch.cat([self.class_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = self.encoder(tokens)
        return self.heads(tokens[:, 0] if self.readout == "class_token" else tokens[:, 1:].mean(dim=1))


def build_demo_vit(input_size: int, vit: dict, num_classes: int) -> DemoViT:
    """The demo ViT for square images of input_size: `vit` holds patch_size, depth, heads, width,
    mlp_width and readout."""
    if input_size % vit["patch_size"]:
        raise RunError(
            f"model.input_size = {input_size} is not a multiple of model.vit.patch_size = "
            f"{vit['patch_size']}: the patches must tile the image"
        )
    if vit["width"] % vit["heads"]:
        raise RunError(f"model.vit.width = {vit['width']} is not a multiple of model.vit.heads = {vit['heads']}")
    return DemoViT(
        image_size=input_size,
        patch_size=vit["patch_size"],
        num_layers=vit["depth"],
        num_heads=vit["heads"],
        hidden_dim=vit["width"],
        mlp_dim=vit["mlp_width"],
        num_classes=num_classes,
        readout=vit.get("readout", "mean_patches"),
    )
