"""benchmarks/gpu_check.py, the prepared check of the GPU path, runs on the CPU in quick mode: the same
code a lent GPU runs, so the check is known to work before device time is spent on it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_on_the_cpu_and_estimates_the_paper_config(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.gpu_check",
            "--device",
            "cpu",
            "--quick",
            "--icons",
            "1000",
            "--step-fraction",
            "0.5",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for name in (
        "decode_resize_images_per_s",
        "extract_float32_images_per_s",
        "extract_bfloat16_images_per_s",
        "render_B2_icon_steps_per_s",
        "render_B4_icon_steps_per_s",
        "umap_umap-learn_2000_points_s",
        "dictionary_4000_rows_s",
    ):
        assert figures[name] > 0, name
    assert figures["umap_cuml"].startswith("not run: layout.backend: cuml needs RAPIDS cuML")
    estimate = figures["paper_config_estimate"]
    # 1,000 icons × 1,024 steps × 4 attempts × 0.5 at the faster batch's rate.
    rate = max(figures["render_B2_icon_steps_per_s"], figures["render_B4_icon_steps_per_s"])
    assert abs(estimate["render_hours"] - 1000 * 1024 * 4 * 0.5 / rate / 3600) <= 0.01
    assert abs(estimate["extract_hours_float32"] - 1_000_000 / figures["extract_float32_images_per_s"] / 3600) <= 0.01
    assert "layout_hours_cuml" not in estimate  # measured at 2,000 points, not at the config's million


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_the_gpu_check_says_when_there_is_no_gpu(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 1 and "no CUDA device is visible" in done.stderr
