"""Expected errors (bad values, damaged files) are one line that names the file or key and what to do;
only the unexpected get a traceback, and each is said once."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from activation_atlas.algorithms.binning import bin_layout
from activation_atlas.formats.layout import read_xy, write_layout
from activation_atlas.models.checkpoint import read_checkpoint
from activation_atlas.runtime import RunError
from tools.runs import REPO


def stage_process(body: str, tmp_path) -> subprocess.CompletedProcess:
    """A process that runs `body` inside a rule script's ProgressLog block."""
    script = (
        "from activation_atlas.runtime import ProgressLog, RunError\n"
        f"with ProgressLog({str(tmp_path / 'rule.log')!r}) as log:\n"
        "    log('working')\n"
        f"    {body}\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_run_error_ends_the_job_with_one_line_in_the_log_and_on_stderr(tmp_path):
    result = stage_process("raise RunError('grid.min_count = 900: lower it')", tmp_path)
    assert result.returncode == 1
    for text in (result.stderr, (tmp_path / "rule.log").read_text()):
        lines = text.splitlines()
        assert len(lines) == 2 and lines[1].endswith("] error: grid.min_count = 900: lower it"), text
        assert "Traceback" not in text


def test_an_unexpected_error_is_reported_with_its_traceback_once(tmp_path):
    result = stage_process("1 / 0", tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1 and result.stderr.count("ZeroDivisionError") == 1
    assert (tmp_path / "rule.log").read_text().count("ZeroDivisionError") == 1


def test_a_truncated_hdf5_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "conv2.h5"
    write_layout(path, np.zeros((50, 2), np.float32), np.zeros((50, 2), np.float32), {"n_neighbors": 5})
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        RunError,
        match=rf"^{path} cannot be read as HDF5 \(.*truncated.*\): it is damaged or "
        "incomplete; delete it and run again to have it made anew$",
    ):
        read_xy(path)


def test_a_truncated_checkpoint_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(
        RunError,
        match=rf"^checkpoint {path} cannot be read \(torch said: .+\): it is damaged, "
        "incomplete or not a torch file",
    ):
        read_checkpoint(path)


def test_a_grid_with_no_cell_to_keep_is_an_error_with_the_fullest_cell():
    xy = np.random.default_rng(0).uniform(size=(100, 2))
    with pytest.raises(
        RunError,
        match=r"^no cell of the 2×2 grid holds more than 60 of the 100 points "
        r"\(the fullest holds \d\d\)$",
    ):
        bin_layout(xy, np.zeros((100, 3), np.float32), np.zeros(100, np.int64), 2, 60, 1)
