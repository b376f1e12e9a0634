"""examples/atlas.ipynb run headless in a Jupyter kernel, as a reader runs it: the published ResNet-32
built and loaded by the notebook's own code, and a torchvision network, get their atlases, class
atlases and comparisons, each shown as an image."""

import ast

import nbformat
import pytest
from nbclient import NotebookClient

from tools.runs import REPO

NOTEBOOK = REPO / "examples" / "atlas.ipynb"


def test_the_notebook_is_committed_without_outputs():
    code = [cell for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def result_of(cell) -> dict:
    """The data of a code cell's result (its last expression); none: {}."""
    results = [output.data for output in cell.outputs if output.output_type == "execute_result"]
    return results[0] if results else {}


@pytest.mark.notebook
def test_the_notebook_runs_headless_and_shows_every_atlas():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    extracted = result_of(next(cell for cell in code if cell.source.startswith("acts = aa.extract")))["text/plain"]
    assert "Activations of layer3: 600 vectors a layer from 300 images (10 logits, top-1 accuracy 0.897)" in extracted
    titles = [result_of(cell)["text/plain"] for cell in code if "image/png" in result_of(cell)]
    assert [title.split(",")[0].split(" in ")[0].strip("'") for title in titles] == [
        "Atlas of layer3",
        "Class atlas of class cat",
        "Class atlas of cat vs dog",
        "Atlas of layer2",
        "Class atlas of class ship",
        "Class atlas of ship vs truck",
    ]
    figures = ast.literal_eval(result_of(next(cell for cell in code if "metrics" in cell.source))["text/plain"])
    assert figures["cells_kept"] > 10 and figures["mean_icon_fidelity"] > 0.8
    page, saved = ast.literal_eval(result_of(next(cell for cell in code if "viewer()" in cell.source))["text/plain"])
    assert page == "viewer.html" and {"activations", "icons", "class_atlas", "viewer.html"} <= set(saved)
