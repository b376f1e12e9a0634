"""A CLIP image tower as a user model (model.kind: user), through open_clip.

CLIP has no classifier of its own; this module gives it one, zero-shot: one text prompt per class
name, embedded by CLIP's text tower once when the model is built, and logits = scale · cosine(image
embedding, class embedding). Class atlases and attributions then follow those classes. The image
tower's blocks are `visual.transformer.resblocks.K`: (B, 1 + h·w, C) token sequences, read as
tokens(prefix=1).
"""

import open_clip
import torch
from torch import nn
from torch.nn import functional as F


class ZeroShotCLIP(nn.Module):
    def __init__(self, visual: nn.Module, class_embeddings: torch.Tensor, scale: float):
        super().__init__()
        self.visual = visual
        self.register_buffer("class_embeddings", class_embeddings)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(self.visual(x), dim=-1) @ self.class_embeddings.T


def zero_shot_clip(
    class_names,
    model_name: str = "ViT-B-32",
    pretrained: str | None = None,
    prompt: str = "a photo of a {}.",
    image_size: int | None = None,
) -> ZeroShotCLIP:
    """open_clip's `model_name` with its `pretrained` weights (fetched by open_clip into its cache on
    first use; None = random weights) and a zero-shot head for `class_names`; `image_size` builds the
    image tower for another input side (its position embeddings interpolated where weights are loaded)."""
    model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, force_image_size=image_size)
    tokenizer = open_clip.get_tokenizer(model_name)
    model.eval()
    with torch.no_grad():
        text = model.encode_text(tokenizer([prompt.format(name) for name in class_names]))
    return ZeroShotCLIP(model.visual, F.normalize(text, dim=-1), model.logit_scale.exp().item())
