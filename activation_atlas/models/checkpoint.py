"""Reading a checkpoint into a network as torch itself would load it.

Formats: a torch file (`torch.save`, new zip or legacy format, read with weights_only=True) holding a
state dict, possibly wrapped under 'state_dict' or 'model' and with DataParallel's 'module.' prefixes;
or a `.safetensors` file (recognised by its content, whatever its name). Loading is
`load_state_dict(strict=True)`, so a checkpoint is accepted exactly when torch accepts it (batch-norm
state dicts saved before `num_batches_tracked` existed included); a refusal lists the missing,
unexpected and wrong-shape keys.
"""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from activation_atlas.runtime import RunError

STATE_DICT_HOW_TO = "save the weights with torch.save(model.state_dict(), path) and point the config at that file"


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
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:   # a truncated or damaged file, not a checkpoint
        raise RunError(f"checkpoint {path} cannot be read (torch said: {str(error).splitlines()[0]}): it is damaged, "
                       "incomplete or not a torch file; if the workflow made it (under resources/), delete it and "
                       "run again to have it made anew") from None
    except pickle.UnpicklingError as error:
        raise RunError(f"checkpoint {path} holds pickled objects other than tensors (a whole model, "
                       f"saved with torch.save(model)?), which are not loaded: {STATE_DICT_HOW_TO}. "
                       f"torch said: {str(error).splitlines()[0]}") from error


def unwrap_state_dict(checkpoint) -> dict[str, torch.Tensor]:
    """The state dict inside the common checkpoint wrappers: a dict holding 'state_dict' or 'model'
    (possibly nested), and 'module.' prefixes left by DataParallel / DistributedDataParallel. The
    state dict's own metadata (module versions) is kept: torch reads old formats by it."""
    state = checkpoint
    while isinstance(state, dict) and any(k in state for k in ("state_dict", "model")) and not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        state = state["state_dict"] if "state_dict" in state else state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError("checkpoint holds no state dict (expected tensors, possibly under "
                       f"'state_dict' or 'model'): {STATE_DICT_HOW_TO}")
    if state and all(k.startswith("module.") for k in state):
        state = copy.copy(state)   # the caller's checkpoint stays as it was
        consume_prefix_in_state_dict_if_present(state, "module.")
    return state


def key_mismatch(model: nn.Module, state: dict) -> str:
    """Why torch refuses `state` for `model`: the missing, unexpected and wrong-shape keys, as torch
    sees them (a copy of the model is loaded non-strictly without the wrong-shape tensors)."""
    own = model.state_dict()
    wrong_shape = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    fitting = OrderedDict((k, v) for k, v in state.items() if k not in wrong_shape)
    if hasattr(state, "_metadata"):
        fitting._metadata = state._metadata
    keys = copy.deepcopy(model).load_state_dict(fitting, strict=False)
    missing = sorted(set(keys.missing_keys) - set(wrong_shape))
    shapes = [f"{k} {tuple(state[k].shape)} ≠ model {tuple(own[k].shape)}" for k in wrong_shape]
    return f"missing keys {missing}; unexpected keys {sorted(keys.unexpected_keys)}; wrong shapes {shapes}"


def load_checkpoint(model: nn.Module, path: Path | str) -> None:
    """Load a checkpoint file into `model` with load_state_dict(strict=True)."""
    state = unwrap_state_dict(read_checkpoint(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise RunError(f"checkpoint {path} does not fit the model: {key_mismatch(model, state)}") from error
