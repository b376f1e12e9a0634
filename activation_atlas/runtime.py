"""What every stage's process needs: a progress log, deterministic torch, a device, atomic outputs,
stable JSON."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path


class RunError(ValueError):
    """A problem with the run's settings or input files that its message explains (the key or file, the
    value, what to do): reported as one line (a few where a list must be shown), without a traceback.
    `details`, where given, are written to the rule's log only (long lists the message summarises)."""

    def __init__(self, message: str, details: str | None = None):
        super().__init__(message)
        self.details = details


def sha256_of(path: Path | str) -> str:
    """The sha256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ProgressLog:
    """Appends timestamped lines to a rule's log file (and stderr), flushed at once so a
    long step can be followed with `tail -f`."""

    def __init__(self, path: Path | str | None):
        self.start = time.perf_counter()
        self.pending = ""
        self.file = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "w", buffering=1)

    def __call__(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.start:8.1f} s] {message}"
        print(line, file=sys.stderr, flush=True)
        if self.file is not None:
            self.file.write(line + "\n")

    def write(self, text: str) -> None:
        """File-like writing, so a library's own progress output can be redirected here; print()
        writes a line in pieces, so complete lines are logged as they close."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip():
                self(line.rstrip())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """A failed stage ends its process here, so that what went wrong is said once, in the log and
        on stderr: a RunError as one line, anything else with its traceback."""
        if exc is None or not isinstance(exc, Exception):
            self.close()
            return False
        if isinstance(exc, RunError):
            self(f"error: {exc}")
            if exc.details and self.file is not None:
                self.file.write(exc.details + "\n")
        else:
            self("failed:\n" + "".join(traceback.format_exception(exc_type, exc, tb)))
        self.close()
        raise SystemExit(1)


def configure_torch(threads: int, seed: int, log) -> None:
    """Deterministic kernels, a fixed thread count and a seeded global generator; in portable mode no
    oneDNN or NNPACK, and square roots rounded as IEEE 754 says (activation_atlas.portable_sqrt); logs
    which kernels torch runs (portable mode pins them, see activation_atlas.workflow.provenance)."""
    import torch

    from activation_atlas.portable_sqrt import use_ieee_sqrt

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    portable = os.environ.get("ACTIVATION_ATLAS_PORTABLE_TORCH") == "1"
    if portable:
        torch.backends.mkldnn.set_flags(False)
        torch.backends.nnpack.set_flags(False)
        use_ieee_sqrt()
    log(
        f"torch {torch.__version__}: {torch.backends.cpu.get_cpu_capability()} CPU kernels, "
        f"{torch.get_num_threads()} threads"
        + (", oneDNN and NNPACK off, IEEE square roots (portable)" if portable else "")
    )


def resolve_device(requested: str) -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch

    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of auto, cpu, cuda; got {requested!r}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RunError("device: cuda was asked for, but torch sees no CUDA device: set device: auto or cpu")
    return requested


def derive_seed(seed: int, *names) -> int:
    """A 31-bit seed for one stage (and wildcard values) from the config seed: stable across runs
    and machines, different for every stage and layer."""
    import zlib

    import numpy as np

    entropy = [seed, *(zlib.crc32(str(name).encode()) for name in names)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Path | str):
    """Yields a temporary path beside `path` (`<name>.partial`) to write a file or a folder at; it
    replaces `path` when the block completes and is removed when it fails, so an interrupted job
    never leaves an output that looks finished. A file's bytes reach the disk before the rename, so
    not even a power cut leaves an empty file under the final name."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_path(partial)
    try:
        yield partial
        if partial.is_file():
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
        remove_path(path)  # os.replace cannot replace a folder that holds files
        os.replace(partial, path)
        sync_folder(path.parent)
    finally:
        remove_path(partial)


def sync_folder(folder: Path) -> None:
    """Make a rename in folder durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_output(path) as partial:
        partial.write_bytes(data)


def write_text(path: Path | str, text: str) -> None:
    with atomic_output(path) as partial:
        partial.write_text(text)


def write_json(path: Path | str, data) -> None:
    """Stable JSON: sorted keys, fixed float formatting, trailing newline."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def settings_of(snakemake, settings_type):
    """A stage's typed settings from its rule's named params (one field per param)."""
    return settings_type(**dict(snakemake.params.items()))
