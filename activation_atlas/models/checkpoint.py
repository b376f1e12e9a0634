"""Reading a checkpoint into a network as torch itself would load it.

Formats: a torch file (`torch.save`, new zip or legacy format, read with weights_only=True) or a
`.safetensors` file (recognised by its content, whatever its name: Hugging Face's `model.safetensors`,
`pytorch_model.bin`). The state dict may sit in the containers the field saves: under 'state_dict'
(PyTorch Lightning, timm), 'model' (torchvision's and DeiT's training scripts), possibly nested, or
only an exponential moving average of the weights ('state_dict_ema', 'model_ema'). Its keys may carry
one prefix on every key: DataParallel's 'module.', a LightningModule's attribute ('model.', 'net.'),
torch.compile's '_orig_mod.', or several of them; the prefix that makes the keys the model's is
stripped. Loading is then `load_state_dict(strict=True)`, so a checkpoint is accepted exactly when
torch accepts it (batch-norm state dicts saved before `num_batches_tracked` existed included), never
on a partial match. A refusal counts the missing, unexpected and wrong-shape keys, shows the first
few, says the likely cause, and leaves the full lists to the rule's log. Besides tensors and plain
containers, torch's weights-only reader is allowed the inert containers a training script's arguments
come in (argparse's Namespace, Lightning's AttributeDict, read as a dict); any other pickled object is
refused by name.
"""

from __future__ import annotations

import argparse
import copy
import pickle
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from activation_atlas.runtime import RunError

STATE_DICT_HOW_TO = "save the weights with torch.save(model.state_dict(), path) and point the config at that file"
# Entries of a checkpoint that hold the network's weights, in order of preference: the trained weights
# before an exponential moving average of them.
WEIGHT_ENTRIES = ("state_dict", "model", "state_dict_ema", "model_ema")
# Containers of a training script's arguments that checkpoints hold beside the weights (a Lightning
# checkpoint's hyper_parameters): attribute bags with no code run on loading. Lightning's AttributeDict,
# a dict subclass, is read as a plain dict, under each module it has lived in, without importing Lightning.
INERT_GLOBALS = [argparse.Namespace] + [
    (dict, f"{module}.AttributeDict")
    for module in (
        "lightning.fabric.utilities.data",
        "lightning_fabric.utilities.data",
        "pytorch_lightning.utilities.parsing",
    )
]
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
SHOWN_KEYS = 4  # keys of each kind named in a refusal; the rule's log has them all


def is_safetensors(path: Path | str) -> bool:
    """A safetensors file starts with the 8-byte little-endian length of a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + int.from_bytes(head[:8], "little") <= Path(path).stat().st_size


def read_checkpoint(path: Path | str):
    """The object stored in a checkpoint file, tensors on the CPU."""
    if is_safetensors(path):
        from safetensors.torch import load_file

        return OrderedDict(load_file(str(path), device="cpu"))
    try:
        with torch.serialization.safe_globals(INERT_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:  # a truncated or damaged file, not a checkpoint
        raise RunError(
            f"checkpoint {path} cannot be read (torch said: {str(error).splitlines()[0]}): it is damaged, "
            "incomplete or not a torch file; if the workflow made it (under resources/), delete it and "
            "run again to have it made anew"
        ) from None
    except pickle.UnpicklingError as error:
        named = UNSUPPORTED_GLOBAL.search(str(error))
        what = (
            f"a pickled {named.group(1)}" if named else "pickled objects other than tensors"
        ) + " (a whole model saved with torch.save(model), or an object among a training script's settings?)"
        raise RunError(
            f"checkpoint {path} holds {what}, which is not loaded: unpickling it would run code the "
            f"file names. {STATE_DICT_HOW_TO}"
        ) from None


def is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def weights_entry(checkpoint) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict inside the checkpoint's containers, and the entries it was found under (outermost
    first; empty for a bare state dict). The state dict's own metadata (module versions) is kept: torch
    reads old formats by it."""
    state, entries = checkpoint, []
    while isinstance(state, dict) and not is_state_dict(state):
        entry = next((e for e in WEIGHT_ENTRIES if e in state), None)
        if entry is None:
            break
        state, entries = state[entry], entries + [entry]
    if not is_state_dict(state):
        raise RunError(
            "checkpoint holds no state dict (expected tensors, possibly under "
            f"{', '.join(map(repr, WEIGHT_ENTRIES))}): {STATE_DICT_HOW_TO}"
        )
    return state, entries


def common_prefixes(keys) -> list[str]:
    """The dotted prefixes that every key carries, shortest first: ['model.', 'model.module.']."""
    keys = list(keys)
    parts = keys[0].split(".") if keys else []
    prefixes = []
    for n in range(1, len(parts)):
        prefix = ".".join(parts[:n]) + "."
        if not all(k.startswith(prefix) for k in keys):
            break
        prefixes.append(prefix)
    return prefixes


def reprefixed(state: dict, strip: str = "", add: str = "") -> OrderedDict:
    """The state dict with `strip` taken off and `add` put before every key, module-version metadata
    included (its keys are module names without the trailing dot)."""

    def name(key: str) -> str:
        return add + key[len(strip) :]

    out = OrderedDict((name(k), v) for k, v in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        out._metadata = OrderedDict()
        for module, value in metadata.items():
            dotted = module + "." if module else ""
            if dotted.startswith(strip):
                out._metadata[name(dotted).rstrip(".")] = value
    return out


def fitting_names(state: dict, model_keys) -> tuple[OrderedDict | dict, str | None]:
    """The state dict with the one prefix change that makes most of its keys the model's (stripping a
    prefix every key carries, or adding one every model key carries), and that change in words; the
    state dict as it is (and None) when no change fits more keys."""
    model_keys = set(model_keys)
    best, best_fit, change = state, len(model_keys & state.keys()), None
    candidates = [(prefix, "") for prefix in common_prefixes(state)]
    candidates += [("", prefix) for prefix in common_prefixes(model_keys) if not common_prefixes(state)]
    for strip, add in candidates:
        renamed = reprefixed(state, strip, add)
        fit = len(model_keys & renamed.keys())
        if fit > best_fit:
            best, best_fit = renamed, fit
            change = f"prefix {strip!r} taken off every key" if strip else f"prefix {add!r} put before every key"
    return best, change


@dataclass
class Mismatch:
    """How a state dict differs from a model's, as torch's strict load sees it."""

    missing: list[str]
    unexpected: list[str]
    wrong_shape: list[str]  # keys in both with other shapes
    shapes: dict[str, tuple]  # key → (checkpoint's shape, model's shape)
    model_keys: list[str]  # in the model's order

    @classmethod
    def between(cls, model: nn.Module, state: dict) -> Mismatch:
        own = model.state_dict()
        wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
        fitting = OrderedDict((k, v) for k, v in state.items() if k not in wrong)
        if hasattr(state, "_metadata"):
            fitting._metadata = state._metadata
        # Torch decides what is missing (old batch-norm formats need no counter): ask it, on a copy.
        keys = copy.deepcopy(model).load_state_dict(fitting, strict=False)
        return cls(
            missing=[k for k in own if k in set(keys.missing_keys) - set(wrong)],
            unexpected=[k for k in state if k in set(keys.unexpected_keys)],
            wrong_shape=wrong,
            shapes={k: (tuple(state[k].shape), tuple(own[k].shape)) for k in wrong},
            model_keys=list(own),
        )

    def counts(self) -> str:
        def keys(n: int) -> str:
            return f"{n} key" + ("s" if n != 1 else "")

        counts = [
            f"{keys(len(self.missing))} of the model's {len(self.model_keys)} missing" if self.missing else "",
            f"{keys(len(self.unexpected))} unexpected" if self.unexpected else "",
            f"{keys(len(self.wrong_shape))} of another shape" if self.wrong_shape else "",
        ]
        return ", ".join(c for c in counts if c)

    def shape_text(self, key: str) -> str:
        found, wanted = self.shapes[key]
        return f"{key} {found} ≠ model {wanted}"

    def listed(self, limit: int | None) -> list[str]:
        """'missing (n): a, b, …' lines for each kind of difference there is, `limit` keys each."""
        lines = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("other shape", [self.shape_text(k) for k in self.wrong_shape]),
        ):
            if keys:
                shown = keys if limit is None else keys[:limit]
                more = f", … ({len(keys) - len(shown)} more)" if len(keys) > len(shown) else ""
                lines.append(f"{label} ({len(keys)}): {', '.join(shown)}{more}")
        return lines

    def likely_cause(self) -> str:
        in_both = len(self.model_keys) - len(self.missing)
        carried = carried_prefixes(self.unexpected, self.missing)
        lacking = carried_prefixes(self.missing, self.unexpected)
        if carried and sum(carried.values()) >= len(self.missing) / 2:
            names = ", ".join(repr(p) for p, _ in carried.most_common(3))
            return (
                f"the checkpoint's keys carry {names} before the model's names (the network was an attribute of "
                "a wrapper such as a LightningModule), and not on every key: save the network's own "
                "state_dict, or make the factory build the wrapper"
            )
        if lacking and sum(lacking.values()) >= len(self.unexpected) / 2:
            names = ", ".join(repr(p) for p, _ in lacking.most_common(3))
            return (
                f"the model's keys carry {names} that the checkpoint's lack: the factory wraps the network "
                "it was trained as; make it return the network itself"
            )
        if not self.missing and not self.unexpected:
            last = self.model_keys[-1].rsplit(".", 1)[0]
            if all(k.rsplit(".", 1)[0] == last for k in self.wrong_shape):
                return (
                    f"only the last layer ({last}) has another shape: the checkpoint was trained for another "
                    "number of classes; build the model with as many (model.kwargs)"
                )
            return (
                "the same layers with other sizes: the checkpoint was trained with other constructor "
                "arguments (widths, patch or image size); set model.kwargs to those"
            )
        fitting = in_both - len(self.wrong_shape)
        if fitting < len(self.model_keys) / 2:
            return (
                f"only {fitting} of the model's {len(self.model_keys)} keys are in the checkpoint with the model's "
                "shape: it is the checkpoint of another architecture than the one the config builds"
            )
        shared = [k for k in self.model_keys if k not in set(self.missing)]
        repeated = repeated_blocks(self.missing + self.unexpected, shared)
        if repeated:
            return (
                f"the model and the checkpoint repeat a block a different number of times ({repeated[0]} is in "
                "one only): another depth; set model.kwargs to the depth the checkpoint was trained with"
            )
        if not self.unexpected:
            return "the checkpoint lacks part of the network (a backbone saved without its head, a partial save?)"
        if not self.missing:
            return (
                "the checkpoint holds layers the model lacks: another depth or variant of the network, or "
                "extra heads saved with it"
            )
        return "another variant of the network (depth, blocks or options differ): check model.kwargs"


def repeated_blocks(keys: list[str], shared: list[str]) -> list[str]:
    """Those of `keys` that are one more copy of a numbered block ('layer1.7.conv1.weight') of which
    the keys both sides have (`shared`) hold other copies ('layer1.0.conv1.weight'): another depth."""

    def numbered(key: str) -> str:
        return re.sub(r"\.\d+\.", ".#.", key)

    copies = {numbered(k) for k in shared}
    return [k for k in keys if numbered(k) != k and numbered(k) in copies]


def carried_prefixes(keys: list[str], others: list[str]) -> Counter:
    """For each dotted prefix p, how many of `keys` are p + one of `others`."""
    others = set(others)
    found = Counter()
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts)):
            if ".".join(parts[n:]) in others:
                found[".".join(parts[:n]) + "."] += 1
                break
    return found


def load_checkpoint(model: nn.Module, path: Path | str, log=None, checkpoint=None) -> None:
    """Load a checkpoint file into `model` with load_state_dict(strict=True), after taking the state dict
    out of its containers and fitting its key prefix (logged where either happened). `checkpoint`: the
    file's content where the caller has read it already."""
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    state, entries = weights_entry(checkpoint)
    state, change = fitting_names(state, model.state_dict().keys())
    if log is not None and entries:
        others = sorted(set(checkpoint) - {entries[0]}) if isinstance(checkpoint, dict) else []
        log(
            f"checkpoint: weights read from entry {'/'.join(map(repr, entries))}"
            + (f" (the file also holds {', '.join(map(repr, others))})" if others else "")
        )
    if log is not None and change:
        log(f"checkpoint: {change} to match the model's names")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        mismatch = Mismatch.between(model, state)
        lines = [
            f"checkpoint {path} does not fit the model ({mismatch.counts()}; torch loads it only when every key fits):",
            *(f"  {line}" for line in mismatch.listed(SHOWN_KEYS)),
            f"  likely cause: {mismatch.likely_cause()}",
        ]
        if change:
            lines.append(f"  (with the {change})")
        lines.append("  the full lists are in the rule's log")
        raise RunError("\n".join(lines), details="\n".join(mismatch.listed(None))) from None
