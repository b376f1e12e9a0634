"""What a run's numbers depend on besides its config: the code's commit, the package versions, the
CPU and the settings that pick its vector kernels, BLAS and thread counts. Recorded beside the results
(never in them, so that results stay byte-identical from run to run)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "scipy",
    "scikit-learn",
    "umap-learn",
    "pynndescent",
    "numba",
    "llvmlite",
    "h5py",
    "pillow",
    "matplotlib",
    "safetensors",
    "snakemake",
)
# Environment variables that change which kernels run, or how many threads split a reduction.
NUMERIC_SETTINGS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_CPU_NAME",
    "NUMBA_CPU_FEATURES",
    "NUMBA_NUM_THREADS",
    "NPY_DISABLE_CPU_FEATURES",
    "CUBLAS_WORKSPACE_CONFIG",
    "ACTIVATION_ATLAS_PORTABLE_TORCH",
)
# Portable mode (config `portable: true`): every library that picks kernels by the CPU's vector
# extensions is held to a baseline that x86-64 CPUs of the last fifteen years all have, so that the
# order of float operations, and so the results, are the same on any of them.
PORTABLE_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "default",  # torch's own vectorised kernels: no AVX2 / AVX-512 paths
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN (torch's convolutions on CPU)
    "MKL_CBWR": "COMPATIBLE",  # MKL (torch's BLAS): the same code path on every CPU
    "OPENBLAS_CORETYPE": "Nehalem",  # OpenBLAS (numpy, scipy, scikit-learn): SSE4.2 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",  # numpy's ufuncs: its X86_V2 baseline
    "NUMBA_CPU_NAME": "generic",  # numba (UMAP): code for a generic x86-64, no FMA contraction
    # torch's jobs turn oneDNN and NNPACK off (activation_atlas.runtime.configure_torch): whatever their
    # ISA, their convolutions block the work by the CPU's cache sizes, and oneDNN promises the same
    # answer on one CPU only. torch's own convolutions (im2col and MKL's GEMM under MKL_CBWR) remain.
    "ACTIVATION_ATLAS_PORTABLE_TORCH": "1",
}
# The instruction-set extensions that decide which vector kernels a library picks.
CPU_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
)


def config_sha256(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def git_state(folder) -> dict:
    """The commit checked out in folder and whether tracked files differ from it; nulls outside git."""

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {"commit": None, "uncommitted_changes": None}
    if head.returncode != 0:
        return {"commit": None, "uncommitted_changes": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu() -> dict:
    """The CPU's model name and which of CPU_FLAGS it has (Linux; the model only elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return {"model": platform.processor() or platform.machine(), "flags": None, "logical_cpus": os.cpu_count()}
    first_processor = cpuinfo.read_text().split("\n\n", 1)[0]
    fields = {
        key.strip(): value.strip()
        for key, value in (line.split(":", 1) for line in first_processor.splitlines() if ":" in line)
    }
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", platform.machine()),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "logical_cpus": os.cpu_count(),
    }


def numeric_settings() -> dict:
    return {name: os.environ.get(name) for name in NUMERIC_SETTINGS}


def workflow_facts(basedir, config: dict) -> dict:
    """What the process that runs the workflow sees: cheap to gather (no import of torch), so that a
    change of any of it reruns the provenance rule."""
    return {
        "code": git_state(basedir),
        "config_sha256": config_sha256(config),
        "python": platform.python_version(),
        "packages": package_versions(),
        "cpu": cpu(),
        "numeric_settings": numeric_settings(),
    }


def torch_build() -> dict:
    """torch's version, the vector kernels and threads it uses here, and its accelerators."""
    import torch

    return {
        "version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "mkl": torch.backends.mkl.is_available(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cuda_build": torch.version.cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def blas_libraries() -> list[dict] | None:
    """The BLAS and OpenMP libraries loaded in this process, with the kernels they picked for this CPU
    (threadpoolctl, where installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    import numpy  # noqa: F401  (loads numpy's BLAS, so that it is listed)

    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{key: library.get(key) for key in keys} for library in threadpool_info()]


def job_facts() -> dict:
    """What the job that records the provenance sees, in its own environment and on its own node."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu(),
        "packages": package_versions(),
        "numeric_settings": numeric_settings(),
        "torch": torch_build(),
        "blas": blas_libraries(),
    }
