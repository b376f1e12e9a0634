"""A sparse dictionary learned on a layer's activations: overcomplete's TopK sparse autoencoder, trained
on batches streamed from the activations file (never the whole array in memory), on the activations of
the images not held out to measure it.

Activations are divided by one scale (the root mean square norm of the training activations), so that
the learning rate means the same at any layer; the decoder's atoms are unit directions of the layer's
activation space, and codes times the scale are in the layer's units.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from activation_atlas.formats.dictionary import LearnedSae
from activation_atlas.runtime import RunError, derive_seed

BLOCK_ROWS = 1 << 16  # activations read from the file at a time


@contextlib.contextmanager
def _matplotlib_get_cmap():
    """overcomplete 0.3.0 builds its colour maps at import with matplotlib.cm.get_cmap, which
    matplotlib 3.9 removed: it is given matplotlib's registry's get_cmap while it imports."""
    import matplotlib
    from matplotlib import cm

    added = not hasattr(cm, "get_cmap")
    if added:
        cm.get_cmap = matplotlib.colormaps.get_cmap
    try:
        yield
    finally:
        if added:
            del cm.get_cmap


def overcomplete_sae():
    """overcomplete's TopKSAE class, its training loop and its AuxK loss (Gao et al. 2024)."""
    with _matplotlib_get_cmap():
        from overcomplete.sae import TopKSAE, train_sae
        from overcomplete.sae.losses import top_k_auxiliary_loss
    return TopKSAE, train_sae, top_k_auxiliary_loss


@dataclass(frozen=True)
class SaeSettings:
    """How a dictionary is learned (the dictionary section resolved for a layer)."""

    atoms: int
    top_k: int
    epochs: int
    batch_size: int
    learning_rate: float


def atom_count(section: dict, channels: int) -> int:
    """The number of atoms: dictionary.atoms, else expansion × the layer's channels."""
    return section["atoms"] or section["expansion"] * channels


def sae_settings(section: dict, channels: int, layer: str) -> SaeSettings:
    """The layer's resolved dictionary section as SaeSettings; top_k must be below the atoms."""
    atoms = atom_count(section, channels)
    if section["top_k"] >= atoms:
        source = "dictionary.atoms" if section["atoms"] else f"expansion {section['expansion']} × {channels} channels"
        raise RunError(
            f"dictionary.top_k = {section['top_k']} for {layer}: it must be below the number of atoms, "
            f"{atoms} ({source})"
        )
    return SaeSettings(atoms, section["top_k"], section["epochs"], section["batch_size"], section["learning_rate"])


def held_out_images(image_index: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Per row, whether its image is among those held out (a seeded draw of round(fraction × images),
    at least one, never all): every activation of an image is on the same side."""
    images = np.unique(image_index)
    if len(images) < 2:
        raise RunError(f"a dictionary needs activations of at least 2 images (one held out), got {len(images)}")
    n = min(max(1, round(fraction * len(images))), len(images) - 1)
    chosen = np.random.default_rng(seed).permutation(images)[:n]
    return np.isin(image_index, chosen)


def rms_norm(activations, rows: np.ndarray, block_rows: int = BLOCK_ROWS) -> float:
    """The root mean square norm of the given rows (a boolean mask) of `activations`, read in blocks."""
    total = 0.0
    for start in range(0, len(rows), block_rows):
        block = np.asarray(activations[start : start + block_rows], dtype=np.float64)[rows[start : start + block_rows]]
        total += float(np.square(block).sum())
    scale = np.sqrt(total / max(int(rows.sum()), 1))
    if not scale > 0:
        raise RunError("every training activation is zero: there is nothing to learn a dictionary of")
    return float(scale)


class TrainingBatches:
    """The training rows of `activations`, scaled, as float32 tensors of batch_size rows: each epoch reads
    the file's blocks in a seeded order and shuffles the rows within a block, so memory holds one block."""

    def __init__(self, activations, train: np.ndarray, scale: float, batch_size: int, seed: int, block_rows=BLOCK_ROWS):
        self.activations, self.train, self.scale = activations, train, scale
        self.batch_size, self.seed, self.block_rows = batch_size, seed, block_rows
        self.epoch = 0

    def __iter__(self):
        import torch

        rng = np.random.default_rng(derive_seed(self.seed, "dictionary_epoch", self.epoch))
        starts = np.arange(0, len(self.train), self.block_rows)
        carried = np.zeros((0, self.activations.shape[1]), dtype=np.float32)
        for start in rng.permutation(starts):
            block = np.asarray(self.activations[start : start + self.block_rows], dtype=np.float32)
            block = block[self.train[start : start + self.block_rows]]
            rows = np.concatenate([carried, block[rng.permutation(len(block))] / np.float32(self.scale)])
            whole = len(rows) // self.batch_size * self.batch_size
            for first in range(0, whole, self.batch_size):
                yield torch.from_numpy(rows[first : first + self.batch_size])
            carried = rows[whole:]
        if len(carried):
            yield torch.from_numpy(carried)


def train_dictionary(activations, train: np.ndarray, settings: SaeSettings, seed: int, device: str, log) -> LearnedSae:
    """Train a TopK SAE on the rows `train` (a boolean mask) of `activations` (an array or HDF5 dataset).

    The encoder starts as the transpose of the (random, unit) decoder with zero bias, which recovers
    planted atoms more reliably than independent initialisations; Adam, AuxK loss for dead atoms.
    """
    import torch

    TopKSAE, train_sae, top_k_auxiliary_loss = overcomplete_sae()
    channels = activations.shape[1]
    scale = rms_norm(activations, train)
    log(
        f"{int(train.sum())} training activations of {channels} channels (rms norm {scale:.4g}): "
        f"{settings.atoms} atoms, top {settings.top_k}, {settings.epochs} epochs of batches of {settings.batch_size}"
    )
    torch.manual_seed(derive_seed(seed, "dictionary_init"))
    sae = TopKSAE(channels, settings.atoms, top_k=settings.top_k, device=device)
    with torch.no_grad():
        atoms = sae.dictionary._weights
        atoms /= atoms.norm(dim=1, keepdim=True)
        sae.encoder.final_block[0].weight.copy_(atoms)
        sae.encoder.final_block[0].bias.zero_()
    optimizer = torch.optim.Adam(sae.parameters(), lr=settings.learning_rate)
    batches = TrainingBatches(activations, train, scale, settings.batch_size, seed)
    losses = []
    for epoch in range(settings.epochs):
        batches.epoch = epoch
        # Its own per-epoch line (with a wall time) would make the log differ run to run: ours instead.
        with contextlib.redirect_stdout(None):
            logs = train_sae(sae, batches, top_k_auxiliary_loss, optimizer, nb_epochs=1, monitoring=1, device=device)
        losses.append(float(logs["avg_loss"][0]))
        log(
            f"epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.5f}, batch R² {logs['r2'][0]:.4f}, "
            f"dead in this epoch {logs['dead_features'][0]:.1%}"
        )
    sae.eval()
    return LearnedSae(
        decoder=sae.get_dictionary().detach().cpu().numpy().astype(np.float32),
        encoder_weight=sae.encoder.final_block[0].weight.detach().cpu().numpy().astype(np.float32),
        encoder_bias=sae.encoder.final_block[0].bias.detach().cpu().numpy().astype(np.float32),
        top_k=settings.top_k,
        scale=scale,
        loss_per_epoch=losses,
    )


class SaeEncoder:
    """A learned dictionary rebuilt as overcomplete's TopKSAE, to encode activations in the layer's units."""

    def __init__(self, decoder: np.ndarray, encoder_weight: np.ndarray, encoder_bias, top_k: int, scale: float, device):
        import torch

        TopKSAE, _, _ = overcomplete_sae()
        atoms, channels = decoder.shape
        self.sae = TopKSAE(channels, atoms, top_k=top_k, device=device)
        state = {
            "encoder.final_block.0.weight": torch.from_numpy(encoder_weight),
            "encoder.final_block.0.bias": torch.from_numpy(encoder_bias),
            "dictionary._weights": torch.from_numpy(decoder),
            "dictionary.multiplier": torch.tensor(0.0),
        }
        self.sae.load_state_dict(state)
        self.sae.eval()
        self.scale, self.device = scale, device

    @classmethod
    def of(cls, sae: LearnedSae, device) -> SaeEncoder:
        return cls(sae.decoder, sae.encoder_weight, sae.encoder_bias, sae.top_k, sae.scale, device)

    def encode(self, activations: np.ndarray):
        """(B, A) codes of (B, C) activations, in the layer's units (k or fewer non-zero per row), and
        the (B, C) reconstructions; torch tensors."""
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.asarray(activations, dtype=np.float32) / np.float32(self.scale)).to(self.device)
            _, codes, reconstruction = self.sae(x)
        return codes * self.scale, reconstruction * self.scale
