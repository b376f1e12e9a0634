"""The bits of the torch operations the workflow runs, as portable mode runs them on this CPU.

    python -m tools.kernel_probe OUT.json                  # this machine's digests (make kernels)
    python -m tools.kernel_probe --native OUT.json         # the same with the CPU's own kernels
    python -m tools.kernel_probe --compare A.json B.json   # the operations whose bits differ

Each case feeds an operation inputs that are exact in float32 (integers over a power of two from
numpy's PCG64, the same on every machine) and keeps the sha256 of every output. The probe runs in a
child process with portable mode's environment (activation_atlas.workflow.provenance) and torch set up
by activation_atlas.runtime.configure_torch, as the workflow's jobs are; --native leaves both out.
Two machines whose portable digests agree compute these operations alike; reference/ci-portable/
KERNELS.json holds the digests of the machine that made the portable reference (`make kernels`
compares this machine's with them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNELS_NAME = "KERNELS.json"
FORMAT = "activation-atlas kernel probe 1"
CHILD = "ACTIVATION_ATLAS_KERNEL_PROBE_CHILD"


def exact_inputs(rng, shape, scale=1024):
    """float32 values k/scale, |k| < scale: exact, so every machine starts from the same bits."""
    import numpy as np
    import torch

    return torch.from_numpy(np.asarray(rng.integers(-scale, scale, size=shape) / scale, dtype=np.float32))


def digest(*tensors) -> str:
    data = b"".join(t.detach().contiguous().numpy().tobytes() for t in tensors)
    return hashlib.sha256(data).hexdigest()


def cases(rng) -> dict:
    """{case: (output tensors)}: the forward and backward of what training, extraction and rendering
    run, torch's vector-math functions, and the optimisers' steps."""
    import torch
    import torch.nn.functional as F

    from activation_atlas.models.demo_cnn import DemoCNN, fold_batch_norm

    def t(*shape, positive=False):
        x = exact_inputs(rng, shape)
        return x.abs() + 1 / 1024 if positive else x

    def forward_backward(fn, *inputs):
        inputs = [x.requires_grad_(True) for x in inputs]
        y = fn(*inputs)
        return (y, *torch.autograd.grad(y, inputs, t(*y.shape)))

    out = {}
    for cin, cout, k, stride, side, layout in [
        (3, 16, 3, 1, 32, "nchw"),
        (16, 32, 3, 2, 32, "nchw"),
        (32, 64, 1, 1, 16, "nchw"),
        (3, 16, 3, 1, 32, "channels_last"),
        (16, 32, 3, 1, 16, "channels_last"),
    ]:
        x = t(8, cin, side, side)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        out[f"conv2d {cin}->{cout} k{k} s{stride} {side}px {layout}"] = forward_backward(
            lambda x, w, b, stride=stride, k=k: F.conv2d(x, w, b, stride=stride, padding=k // 2),
            x,
            t(cout, cin, k, k),
            t(cout),
        )
    for m, k, n in [(64, 128, 10), (256, 512, 256), (7, 33, 5)]:
        out[f"linear {m}x{k}->{n}"] = forward_backward(F.linear, t(m, k), t(n, k), t(n))
    out["batch_norm train"] = forward_backward(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), t(16, 32, 8, 8), t(32), t(32)
    )
    out["layer_norm"] = forward_backward(lambda x, w, b: F.layer_norm(x, (64,), w, b), t(8, 17, 64), t(64), t(64))
    out["max_pool2d"] = forward_backward(lambda x: F.max_pool2d(x, 2), t(4, 16, 16, 16))
    out["softmax"] = forward_backward(lambda x: F.softmax(x, 1), t(64, 1000))
    target = torch.from_numpy(rng.integers(0, 10, 64))
    out["cross_entropy"] = forward_backward(lambda x: F.cross_entropy(x, target), t(64, 10))
    for name in ("relu", "gelu", "sigmoid", "silu"):
        out[name] = forward_backward(getattr(F, name), t(4096))
    # torch hands these to MKL's vector math (VML) on CPU; portable mode takes sqrt from numpy
    for name in ("sqrt", "exp", "log", "log1p", "sin", "cos", "tanh", "erf", "atan"):
        x = t(4096, positive=name in ("sqrt", "log"))
        out[name] = (getattr(torch, name)(x),)
    x = t(4096, positive=True)
    out["sqrt in place"], out["sqrt foreach"] = (x.clone().sqrt_(),), tuple(torch._foreach_sqrt([x, x[:7]]))
    out["pow 0.5"] = (x.pow(0.5),)
    out["rsqrt"] = (torch.rsqrt(x),)
    out["norm dim 1"] = (t(1000, 512).norm(dim=1),)
    out["normalize"] = (F.normalize(t(100, 512), dim=1),)
    out["sum 1e6"] = (t(1_000_000).sum(),)
    out["interpolate bilinear"] = forward_backward(
        lambda x: F.interpolate(x, scale_factor=1.3, mode="bilinear", align_corners=False), t(2, 3, 32, 32)
    )
    theta = torch.tensor([[[0.98, -0.17, 0.02], [0.17, 0.98, -0.03]]]).repeat(2, 1, 1)
    grid = F.affine_grid(theta, [2, 3, 32, 32], align_corners=False)
    out["grid_sample"] = forward_backward(lambda x: F.grid_sample(x, grid, align_corners=False), t(2, 3, 32, 32))
    out["irfft2"] = forward_backward(
        lambda x: torch.fft.irfft2(torch.complex(x, x * 0.5), s=(32, 32), norm="ortho"), t(2, 3, 32, 17)
    )
    for name, make in [
        ("adam", lambda p: torch.optim.Adam(p, lr=1e-3)),
        ("adam foreach", lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
        ("sgd momentum", lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)),
    ]:
        parameter = torch.nn.Parameter(t(256, 128))
        optimizer = make([parameter])
        for _ in range(3):
            parameter.grad = t(256, 128)
            optimizer.step()
        out[f"optim {name}"] = (parameter,)
    model = DemoCNN((8, 16, 16, 16))
    with torch.no_grad():
        for name, value in model.state_dict().items():
            value.copy_(t(*value.shape, positive=name.endswith("running_var")) if value.is_floating_point() else value)
    with torch.inference_mode():
        out["demo CNN folded forward"] = (fold_batch_norm(model.eval())(t(4, 3, 32, 32)),)
    return out


def probe() -> dict:
    import numpy as np
    import torch

    from activation_atlas.runtime import configure_torch
    from activation_atlas.workflow.provenance import cpu

    configure_torch(1, 0, lambda line: None)
    digests = {
        name: digest(*outputs) for name, outputs in cases(np.random.Generator(np.random.PCG64(20261206))).items()
    }
    return {
        "format": FORMAT,
        "cpu": cpu()["model"],
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "portable": os.environ.get("ACTIVATION_ATLAS_PORTABLE_TORCH") == "1",
        "digests": digests,
    }


def run_probe(out: Path, native: bool = False, environment: dict | None = None) -> dict:
    """The probe's digests from a child process (the environment must be set before torch loads):
    portable mode's environment unless native, then `environment` over it."""
    from activation_atlas.workflow.provenance import PORTABLE_ENVIRONMENT

    env = {**os.environ, **({} if native else PORTABLE_ENVIRONMENT), **(environment or {}), CHILD: "1"}
    subprocess.run([sys.executable, "-m", "tools.kernel_probe", str(out)], cwd=REPO, env=env, check=True)
    return json.loads(Path(out).read_text())


def differing(a: dict, b: dict) -> list[str]:
    """The cases whose digests differ, or that only one of the probes has."""
    return sorted(
        name for name in set(a["digests"]) | set(b["digests"]) if a["digests"].get(name) != b["digests"].get(name)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kernel_probe", description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", type=Path, help="where to write this machine's digests (JSON)")
    parser.add_argument("--native", action="store_true", help="the CPU's own kernels, not portable mode's")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="two probes' files to compare")
    args = parser.parse_args(argv)
    if args.compare:
        a, b = (json.loads(path.read_text()) for path in args.compare)
        names = differing(a, b)
        print(
            f"{a['cpu']} ({a['capability']}, portable {a['portable']}) | {b['cpu']} ({b['capability']}, "
            f"portable {b['portable']}): {len(names)} of {len(a['digests'])} operations differ"
            + "".join(f"\n  {name}" for name in names)
        )
        return 1 if names else 0
    if args.out is None:
        parser.error("name the file to write the digests to, or --compare two of them")
    if os.environ.get(CHILD) == "1":
        Path(args.out).write_text(json.dumps(probe(), indent=1, sort_keys=True) + "\n")
        return 0
    result = run_probe(args.out, args.native)
    print(
        f"{len(result['digests'])} operations on {result['cpu']} ({result['capability']} kernels, "
        f"portable {result['portable']}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
