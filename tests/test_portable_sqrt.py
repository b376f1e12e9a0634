"""Portable mode's square roots are IEEE 754's on every CPU: torch's own CPU kernel hands them to MKL's
vector math, which rounds within one unit in the last place and picks its code by CPU vendor."""

import json
import os
import subprocess
import sys

from tools.kernel_probe import differing, run_probe
from tools.runs import REPO

CHECK = r"""
import json
import numpy as np
import torch
from activation_atlas.runtime import configure_torch

configure_torch(1, 0, print)
rng = np.random.default_rng(5)
values = np.concatenate([rng.uniform(0, 4, 20000), rng.uniform(0, 1e-38, 100), [0.0, 1.0, 2.0, 3e38, np.inf]])
x32 = values.astype(np.float32)
ieee = np.sqrt(x32.astype(np.float64)).astype(np.float32)   # exact in float64, then rounded once more: IEEE's
x = torch.from_numpy(x32)
out = torch.empty(0)
torch.sqrt(x, out=out)
parameter = torch.from_numpy(x32.copy()).requires_grad_()
parameter.sqrt().sum().backward()
with torch.inference_mode():
    inference = torch.sqrt(x)
forms = {"torch.sqrt": torch.sqrt(x), "Tensor.sqrt": x.sqrt(), "sqrt_": x.clone().sqrt_(), "out=": out,
         "_foreach_sqrt (Adam)": torch._foreach_sqrt([x])[0], "inference_mode": inference,
         "strided": torch.sqrt(x[::3]), "float64": torch.sqrt(x.double())}
wrong = {name: int((value.numpy() != (ieee[::3] if name == "strided" else ieee)).sum()) for name, value in forms.items()
         if name != "float64"}
wrong["float64"] = int((forms["float64"].numpy() != np.sqrt(x32.astype(np.float64))).sum())
gradient_ok = bool(torch.allclose(parameter.grad[1:20000], 0.5 / torch.from_numpy(ieee[1:20000])))
print(json.dumps({"wrong": wrong, "gradient_ok": gradient_ok, "integer": torch.sqrt(torch.tensor([4, 9])).tolist()}))
"""


def run_check(portable: bool) -> dict:
    env = {"ACTIVATION_ATLAS_PORTABLE_TORCH": "1"} if portable else {}
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**{k: v for k, v in os.environ.items() if k != "ACTIVATION_ATLAS_PORTABLE_TORCH"}, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"log": result.stdout}


def test_portable_square_roots_are_ieee_rounded_in_every_form_torch_takes():
    portable = run_check(portable=True)
    assert portable["wrong"] == dict.fromkeys(portable["wrong"], 0), portable["wrong"]
    assert portable["gradient_ok"] and portable["integer"] == [2.0, 3.0]
    assert "IEEE square roots (portable)" in portable["log"]
    native = run_check(portable=False)  # native runs keep torch's kernel (and their references' bytes)
    assert "IEEE" not in native["log"] and native["gradient_ok"]


def test_the_probe_sees_the_same_square_roots_whichever_kernels_lie_below(tmp_path):
    """Under portable mode, the square roots (and only the operations built on nothing else) keep their
    bits when torch, MKL and numpy are let use this CPU's best kernels; the probe still sees the rest move."""
    pinned = run_probe(tmp_path / "pinned.json")
    best = run_probe(
        tmp_path / "best.json",
        environment={"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AUTO", "NPY_DISABLE_CPU_FEATURES": ""},
    )
    moved = differing(pinned, best)
    assert not {"sqrt", "sqrt in place", "sqrt foreach"} & set(moved), moved
    if best["capability"] != pinned["capability"]:  # this CPU has AVX2: the probe sees kernels change
        assert "conv2d 3->16 k3 s1 32px nchw" in moved
    again = run_probe(tmp_path / "again.json")
    assert differing(pinned, again) == []
