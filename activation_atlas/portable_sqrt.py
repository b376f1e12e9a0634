"""Portable mode's square root: torch's, computed as IEEE 754 rounds it, on every CPU.

torch's CPU kernel of `sqrt` hands float tensors to MKL's vector math (VML's vsSqrt, high-accuracy
mode: within one unit in the last place, not correctly rounded). VML picks its code by the CPU's
vendor and model, and MKL_CBWR does not pin it: on an AMD EPYC every MKL_CBWR branch gives the same
bits, which differ from an Intel Xeon's under MKL_CBWR=COMPATIBLE in 1 of 5 results
(docs/artifact-evaluation.md). Adam's step and the demo CNN's batch-norm folding take square roots, so
training and extraction diverged between the two CPUs by one unit in the last place.

Portable mode replaces torch's CPU kernels of sqrt (functional, in place and out=) with numpy's square
root, which IEEE 754 defines to the bit and every x86-64 CPU computes alike. Autograd is untouched:
its formulas call these kernels as they called torch's. torch's other VML functions (exp, log, sin,
cos, tanh, erf, ...) gave the same bits on both CPUs and are left to torch (tools/kernel_probe.py
checks them on each machine).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

_REGISTRATION = []  # the library that holds the replacement kernels: alive for the process's life


def ieee_sqrt(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root of x, in the dtype torch.sqrt gives."""
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.get_default_dtype())
    if x.dtype == torch.bfloat16:  # numpy has no bfloat16: float32's root rounded again is exact
        return ieee_sqrt(x.float()).to(torch.bfloat16)
    return torch.from_numpy(np.asarray(np.sqrt(x.detach().numpy())))


def sqrt_in_place(x: torch.Tensor) -> torch.Tensor:
    return x.copy_(ieee_sqrt(x))


def sqrt_out(x: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    result = ieee_sqrt(x)
    out.resize_(result.shape)
    return out.copy_(result)


def use_ieee_sqrt() -> None:
    """Replace torch's CPU sqrt kernels with ieee_sqrt in this process (once)."""
    if _REGISTRATION:
        return
    library = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():  # replacing a kernel is what is meant here
        warnings.filterwarnings("ignore", message=".*Overriding a previously registered kernel.*")
        library.impl("sqrt", ieee_sqrt, "CPU")
        library.impl("sqrt_", sqrt_in_place, "CPU")
        library.impl("sqrt.out", sqrt_out, "CPU")
    _REGISTRATION.append(library)
