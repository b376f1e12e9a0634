"""Attribution of sampled activations to the logits: the linear approximation h · ∂logit_c/∂h.

For an activation vector h (a layer's channels at one spatial position) and class c, the attribution
is how much logit c would change, to first order, if h were removed: the dot product of h with the
gradient of logit c with respect to h. One backward pass per class gives the gradients for every
image, layer and position of a batch at once (eval-mode networks treat images independently).

With `top_k`, only the k classes with the highest logits of each image are attributed, after the
classes `always` (those the run's class atlases need), which bounds time and storage for 1000-class
models; their indices are returned beside the values. A layer the logits read only through a
normalisation is attributed at that norm's output, less its bias, each position by its share with the
norm's scale held (models/normalised.py).
"""

from __future__ import annotations

import numpy as np
import torch

from activation_atlas.models.grids import LayerGrid
from activation_atlas.models.normalised import NormPass


def attribute_positions(
    logits: torch.Tensor,
    outputs: dict[str, torch.Tensor],
    grids: dict[str, LayerGrid],
    positions: dict[str, np.ndarray],
    k: int,
    top_k: int | None,
    always: tuple[int, ...] = (),
    through_norms: dict[str, NormPass] | None = None,
):
    """Attributions of the sampled positions of each layer.

    logits (B, K), outputs[layer] (the layer's output) and through_norms[layer] (the norm a layer is
    attributed at, if any) must come from one forward pass with autograd on; grids[layer] reads the
    output, and its gradient, as (B, C, H, W); positions[layer] is
    (B·k, 2), k per image in batch order. Returns {layer: (B·k, K')} values and the (B·k, K') class
    indices (K' = K, or top_k).
    """
    batch, n_classes = logits.shape
    if top_k is not None and top_k + len(always) < n_classes:
        others = logits.detach().clone()
        others[:, list(always)] = -torch.inf
        named = torch.tensor(always, dtype=torch.long, device=logits.device).expand(batch, len(always))
        classes = torch.cat([named, others.topk(top_k, dim=1).indices], dim=1)  # (B, |always| + top_k)
    else:
        classes = torch.arange(n_classes, device=logits.device).expand(batch, n_classes)
    layers = list(outputs)
    image = torch.arange(batch, device=logits.device).repeat_interleave(k)
    rows = {layer: torch.from_numpy(positions[layer][:, 0]).to(logits.device) for layer in layers}
    cols = {layer: torch.from_numpy(positions[layer][:, 1]).to(logits.device) for layer in layers}
    through_norms = through_norms or {}
    sampled = {
        layer: grids[layer].as_maps(outputs[layer].detach())[image, :, rows[layer], cols[layer]] for layer in layers
    }
    values = {layer: torch.zeros(batch * k, classes.shape[1]) for layer in layers}
    differentiated = [through_norms[layer].output if layer in through_norms else outputs[layer] for layer in layers]
    for j in range(classes.shape[1]):
        target = logits.gather(1, classes[:, j : j + 1]).sum()
        grads = torch.autograd.grad(target, differentiated, retain_graph=True)
        for layer, grad in zip(layers, grads):
            if layer in through_norms:
                grad = through_norms[layer].pulled_back(grad, outputs[layer])
            at_positions = grids[layer].as_maps(grad)[image, :, rows[layer], cols[layer]]
            values[layer][:, j] = (sampled[layer] * at_positions).sum(dim=1).float().cpu()
    class_index = classes.repeat_interleave(k, dim=0).cpu().numpy().astype(np.int32)
    return {layer: v.numpy() for layer, v in values.items()}, class_index
