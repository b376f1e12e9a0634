"""The documentation: a README that is a front door to the pages under docs/, links that lead
somewhere, a recipe that runs, and pictures that are outputs of the workflow: every image under docs/
has a source in docs/sources.yaml and is byte for byte the file its run's reference manifest records
(the manifest `make verify` checks a reviewer's run against); make docs makes them. (The ResNet-32
picture is also checked against a fresh run of its config: test_real_models_workflow.)"""

import copy
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from PIL import Image

import tools.docs_tables
from activation_atlas.checking.manifest import read_manifest
from activation_atlas.runtime import sha256_of
from activation_atlas.workflow.config_check import check_config
from tools import api_docs
from tools.docs_images import DOCS, build, load_sources
from tools.docs_tables import MEASUREMENTS, shown_tables, stale_tables
from tools.runs import REPO, SCHEMA

SOURCES = load_sources()
COPIED = sorted(name for name, source in SOURCES["images"].items() if "file" in source)
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def reference_entry(name: str) -> dict:
    source = SOURCES["images"][name]
    return read_manifest(REPO / "reference" / source["run"] / "MANIFEST.json")["files"][source["file"]]


def test_every_image_under_docs_has_a_source_and_the_pages_show_only_those():
    assert {p.name for p in DOCS.glob("*.png")} == set(SOURCES["images"])
    shown = {
        (page.parent / target).resolve()
        for page in PAGES
        for target in LINK.findall(page.read_text())
        if target.endswith(".png")
    }
    assert shown and shown <= {(DOCS / name).resolve() for name in SOURCES["images"]}
    for run, config in SOURCES["runs"].items():
        assert yaml.safe_load((REPO / config).read_text())["run"] == run
        assert read_manifest(REPO / "reference" / run / "MANIFEST.json")["run"] == run


@pytest.mark.parametrize("name", COPIED)
def test_a_docs_image_is_the_file_its_runs_reference_manifest_records(name):
    assert sha256_of(DOCS / name) == reference_entry(name)["sha256"], (
        f"docs/{name} is not {SOURCES['images'][name]['file']} of the reference run: make docs"
    )


@pytest.mark.workflow
def test_make_docs_copies_each_named_file_unchanged_and_screenshots_the_viewer(first_run, tmp_path):
    sources = {
        "runs": {"ci": "config/ci.yaml"},
        "images": {
            "ci-atlas.png": {"run": "ci", "file": "atlas/conv3/grid6.png"},
            "ci-viewer.png": {"run": "ci", "viewer": "#atlas=conv3&x=0.5&y=0.5&zoom=2"},
        },
    }
    build(first_run / "results", tmp_path, sources)
    assert (tmp_path / "ci-atlas.png").read_bytes() == (first_run / "results/ci/atlas/conv3/grid6.png").read_bytes()
    with Image.open(tmp_path / "ci-viewer.png") as shot:
        assert shot.size == (1100, 760)
    sources["images"] = {"gone.png": {"run": "ci", "file": "atlas/conv9/grid6.png"}}
    with pytest.raises(SystemExit, match=r"atlas/conv9/grid6.png is missing: run config/ci.yaml first"):
        build(first_run / "results", tmp_path, sources)


def test_the_readme_is_a_front_door_whose_links_all_lead_somewhere():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert {page.name for page in DOCS.glob("*.md")} == {
        name for name in re.findall(r"\(docs/([\w-]+\.md)\)", readme)
    }, "every docs page is in the README's map"
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to {target}: no such file"


def test_the_readmes_own_network_recipe_passes_the_config_check(monkeypatch):
    """Its model, dataset and layers as written (the committed checkpoint and photographs)."""
    monkeypatch.chdir(REPO)
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    recipe = yaml.safe_load(next(block for block in blocks if "kind: user" in block))
    checked = copy.deepcopy(recipe)
    check_config(checked, SCHEMA)
    shipped = yaml.safe_load((REPO / "config" / "cifar10-resnet32.yaml").read_text())
    for key in ("factory", "python_path", "input_size", "resize", "normalize"):
        assert recipe["model"][key] == shipped["model"][key], key
    assert recipe["layers"] == shipped["layers"] and recipe["dataset"]["path"] == shipped["dataset"]["path"]


def test_every_generated_table_in_the_docs_is_what_its_figures_make(tmp_path):
    assert stale_tables() == []
    page = (DOCS / "transformers.md").read_text()
    assert "<!-- table: demo-vit-atlases -->" in page
    (tmp_path / "transformers.md").write_text(
        page.replace("| `encoder_layer_3` | 10 | 45 |", "| `encoder_layer_3` | 10 | 46 |")
    )
    assert stale_tables(tmp_path) == ["transformers.md: demo-vit-atlases"]


def test_every_kept_measurement_is_shown_and_a_changed_figure_makes_its_table_stale(tmp_path, monkeypatch):
    kept = {path.stem for path in MEASUREMENTS.glob("*.json")}
    assert "run_benchmarks" in kept
    assert kept <= shown_tables(), "a kept measurement no page shows"
    for path in MEASUREMENTS.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    record = json.loads((tmp_path / "run_benchmarks.json").read_text())
    record["figures"]["extraction"]["ratio_median"] += 0.1
    (tmp_path / "run_benchmarks.json").write_text(json.dumps(record))
    monkeypatch.setattr(tools.docs_tables, "MEASUREMENTS", tmp_path)
    assert stale_tables() == ["performance.md: run_benchmarks"]


def test_a_table_naming_nothing_kept_is_refused_with_what_is_made(tmp_path):
    (tmp_path / "page.md").write_text("<!-- table: render_quality-no-such-model -->\n<!-- end table -->\n")
    with pytest.raises(SystemExit, match="unknown table 'render_quality-no-such-model'.*kept: .*run_benchmarks"):
        stale_tables(tmp_path)


def test_every_test_the_artifact_appendix_cites_exists():
    """The appendix maps each claim to the test that checks it: a renamed or deleted test leaves a claim
    unchecked, so every `tests/<file>.py` and `::<name>` it cites must be there."""
    text = (DOCS / "artifact-appendix.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(cited) > 15
    for path, name in cited:
        source = (REPO / path).read_text()
        assert not name or re.search(rf"^def {name}\(", source, re.M), f"{path}::{name}"


def test_the_python_api_page_is_what_the_docstrings_make():
    assert api_docs.PAGE.read_text() == api_docs.page(), "run python -m tools.api_docs"


def test_the_readmes_python_block_writes_an_atlas_as_written(tmp_path):
    """The README's From Python section (at most 15 lines), its block run as it is in a copy of the files
    it names."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## From Python") :].split("\n## ")[0].rstrip("\n")
    assert len(section.splitlines()) <= 15
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copytree(REPO / "tests/data/cifar10-resnet32", tmp_path / "tests/data/cifar10-resnet32")
    subprocess.run([sys.executable, "-c", block], cwd=tmp_path, check=True, capture_output=True)
    run = tmp_path / "results/resnet32-python"
    figures = json.loads((run / "atlas/layer3/metrics.json").read_text())["grids"]["8"]
    assert (run / "atlas/layer3/grid8.png").is_file() and figures["mean_icon_fidelity"] > 0.8
