"""The run's viewer in headless Chromium (Debian's chromium, driven by Playwright), opened from disk:
tiles load, zooming in switches grid, tooltips describe cells, the layer and class choosers work and
a link restores the view. Any console error, page error or failed request fails the test.
Screenshots go to results/viewer-test/ for review."""

import json
import re
import shutil
import subprocess

import h5py
import pytest

from tools.runs import REPO, load_config

CONFIG = load_config("config/ci.yaml")
RUN, LAYERS, GRIDS = CONFIG["run"], CONFIG["layers"], CONFIG["grid"]["sizes"]
SCREENSHOTS = REPO / "results" / "viewer-test"
TILES_LOADED = """() => {
    const tiles = [...document.querySelectorAll('#tiles img')];
    return tiles.length > 0 && tiles.every((t) => t.complete && t.naturalWidth > 0);
}"""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the viewer test needs Chromium: make test installs it as root; else apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Chromium's sandbox cannot start as root (CI runs as root).
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


def open_viewer(browser, url: str):
    """A page on the viewer, and the list its console errors, page errors and failed requests go to."""
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.goto(url)
    page.wait_for_function(TILES_LOADED)
    return page, problems


@pytest.mark.workflow
def test_viewer_pans_zooms_describes_cells_and_restores_links(first_run, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewer = first_run / "results" / RUN / "viewer.html"
    card = json.loads(next((first_run / "resources" / "models").glob("*/model.json")).read_text())
    page, problems = open_viewer(browser, viewer.as_uri())
    assert page.evaluate("atlasViewer.grid()") == GRIDS[0]
    assert page.locator("#atlas-select option").count() == len(LAYERS) + len(CONFIG["class_atlas"]["classes"]) + len(
        CONFIG["class_atlas"]["comparisons"]
    ) + len(CONFIG["dictionary"]["layers"])
    page.screenshot(path=SCREENSHOTS / "1-overview.png")

    # Zoom in with the button until the finer grid takes over.
    for _ in range(12):
        if page.evaluate("atlasViewer.grid()") != GRIDS[0]:
            break
        page.click("#zoom-in")
    assert page.evaluate("atlasViewer.grid()") == GRIDS[1]
    assert re.search(rf"grid {GRIDS[1]}×{GRIDS[1]}", page.text_content("#level"))
    page.wait_for_function(TILES_LOADED)
    assert all(
        f"tiles/grid{GRIDS[1]}/" in src
        for src in page.eval_on_selector_all("#tiles img", "imgs => imgs.map(i => i.getAttribute('src'))")
    )

    # Hover an icon: its cell, count, top classes and sample images.
    cell = page.evaluate("atlasViewer.visibleCells()")[0]
    box = page.locator("#viewport").bounding_box()
    page.mouse.move(box["x"] + cell["x"], box["y"] + cell["y"])
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    assert f"cell ({cell['col']}, {cell['row']}) of {GRIDS[1]}×{GRIDS[1]}" in text
    with h5py.File(first_run / "results" / RUN / "cells" / LAYERS[0] / f"grid{GRIDS[1]}.h5", "r") as f:
        k = [(int(r), int(c)) for r, c in zip(f["row"][:], f["col"][:])].index((cell["row"], cell["col"]))
        count, top_name = int(f["count"][k]), f["top_class_names"][k, 0].decode()
        n_samples = int((f["sample_images"][k] >= 0).sum())
    assert f"{count} activations averaged" in text and top_name in text
    assert tooltip.locator(".sample").count() == n_samples > 0
    page.screenshot(path=SCREENSHOTS / "2-zoomed-tooltip.png")

    # The link restores layer, position and zoom in a new page.
    link = page.get_attribute("#view-link", "href")
    state = page.evaluate("({...atlasViewer.state})")
    restored, restored_problems = open_viewer(browser, viewer.as_uri() + link)
    assert restored.evaluate("({...atlasViewer.state})") == pytest.approx(state, abs=1e-3)
    assert restored.evaluate("atlasViewer.grid()") == GRIDS[1]
    restored.close()

    # Another layer, then a class filter that veils the cells not attributed to the class.
    page.select_option("#atlas-select", label=f"layer {LAYERS[-1]}")
    page.wait_for_function(TILES_LOADED)
    assert all(
        f"atlas/{LAYERS[-1]}/" in src
        for src in page.eval_on_selector_all("#tiles img", "imgs => imgs.map(i => i.getAttribute('src'))")
    )
    spec = CONFIG["class_atlas"]["classes"][0]  # a name or a logit index
    target = card["classes"][spec] if isinstance(spec, int) else spec
    page.select_option("#class-filter", label=target)
    assert f"class={target}" in page.get_attribute("#view-link", "href")
    veiled = page.evaluate("""() => {
        const c = document.getElementById('overlay');
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let covered = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) covered++;
        return covered;
    }""")
    assert veiled > 0
    assert target in card["classes"]
    page.screenshot(path=SCREENSHOTS / "3-class-filter.png")

    # A class atlas from the chooser.
    page.select_option("#atlas-select", label=f"class {spec} ({CONFIG['class_atlas']['layer'] or LAYERS[-1]})")
    page.wait_for_function(TILES_LOADED)
    assert all(
        f"class_atlas/{spec}/tiles/" in src
        for src in page.eval_on_selector_all("#tiles img", "imgs => imgs.map(i => i.getAttribute('src'))")
    )
    page.screenshot(path=SCREENSHOTS / "4-class-atlas.png")
    assert not problems and not restored_problems, problems + restored_problems


@pytest.mark.workflow
def test_the_features_layer_shows_each_atom_with_its_frequency_and_cells_and_each_cell_its_atoms(first_run, browser):
    """A dictionary layer's feature atlas: hovering an atom gives its frequency, classes, top images and
    the layer's cells where it is strongest; hovering a cell of the layer's atlas, its strongest atoms."""
    (layer,) = CONFIG["dictionary"]["layers"]
    viewer = first_run / "results" / RUN / "viewer.html"
    page, problems = open_viewer(browser, viewer.as_uri())
    box = page.locator("#viewport").bounding_box()
    tooltip = page.locator("#tooltip")

    page.select_option("#atlas-select", label=f"layer {layer}")
    page.wait_for_function(TILES_LOADED)
    texts = []
    for cell in page.evaluate("atlasViewer.visibleCells()"):
        page.mouse.move(box["x"] + cell["x"], box["y"] + cell["y"])
        tooltip.wait_for(state="visible")
        texts.append(tooltip.text_content())
    assert any(re.search(r"strongest atoms \(code\):atom \d+", text) for text in texts), texts[:3]

    page.select_option("#atlas-select", label=f"features of {layer} (dictionary)")
    page.wait_for_function(TILES_LOADED)
    folder = first_run / "results" / RUN / "dictionary" / layer
    with h5py.File(folder / "cells.h5", "r") as f:
        atom_of_cell = {(int(r), int(c)): int(a) for r, c, a in zip(f["row"][:], f["col"][:], f["atom"][:])}
    with h5py.File(folder / "dictionary.h5", "r") as f:
        frequency, fires = f["frequency"][:], f["fires"][:]
    cells = page.evaluate("atlasViewer.visibleCells()")
    assert len(cells) == len(atom_of_cell)
    strong_in = 0
    for cell in cells:
        page.mouse.move(box["x"] + cell["x"], box["y"] + cell["y"])
        tooltip.wait_for(state="visible")
        text = tooltip.text_content()
        atom = atom_of_cell[(cell["row"], cell["col"])]
        assert f"atom {atom} of the dictionary of {layer}" in text
        shown = re.search(r"fires on ([\d.]+)% of the activations \((\d+)\)", text)
        assert float(shown[1]) == pytest.approx(100 * frequency[atom], rel=0.006) and int(shown[2]) == fires[atom]
        strong_in += "strongest in cells of layer" in text
    assert strong_in > 0
    page.screenshot(path=SCREENSHOTS / "5-features.png")
    assert not problems, problems


@pytest.mark.workflow
def test_an_aligned_atlas_switches_to_the_other_network_at_the_same_view(aligned_run, browser):
    """config/ci-aligned.yaml's viewer: its two members in the chooser; zoomed in and panned on the
    first, the switch shows the other network's tiles at the very same view, as does choosing the
    partner from the chooser."""
    workdir, _ = aligned_run
    viewer = workdir / "results" / "ci-aligned" / "viewer.html"
    page, problems = open_viewer(browser, viewer.as_uri())
    assert page.locator("#atlas-select option").all_text_contents() == ["CNN conv3", "ViT block 2"]
    switch = page.locator("#partner")
    assert switch.is_visible() and switch.text_content() == "⇄ ViT block 2"
    for _ in range(3):
        page.click("#zoom-in")
    box = page.locator("#viewport").bounding_box()
    page.mouse.move(box["x"] + 500, box["y"] + 380)
    page.mouse.down()
    page.mouse.move(box["x"] + 440, box["y"] + 330)
    page.mouse.up()
    view = page.evaluate("({...atlasViewer.state})")
    assert view["zoom"] > 2 and view["x"] != 0.5
    page.wait_for_function(TILES_LOADED)
    cnn_tiles = page.eval_on_selector_all("#tiles img", "imgs => imgs.map(i => i.getAttribute('src'))")
    page.screenshot(path=SCREENSHOTS / "5-aligned-cnn.png")
    switch.click()
    page.wait_for_function(TILES_LOADED)
    assert page.evaluate("({...atlasViewer.state})") == {**view, "atlas": 1}
    vit_tiles = page.eval_on_selector_all("#tiles img", "imgs => imgs.map(i => i.getAttribute('src'))")
    assert all("members/ci-vit/encoder.layers.encoder_layer_1/" in src for src in vit_tiles)
    assert [src.split("/tiles/")[1] for src in vit_tiles] == [src.split("/tiles/")[1] for src in cnn_tiles]
    assert switch.text_content() == "⇄ CNN conv3" and "atlas=member1" in page.get_attribute("#view-link", "href")
    page.screenshot(path=SCREENSHOTS / "6-aligned-vit.png")
    page.select_option("#atlas-select", label="CNN conv3")  # the partner, from the chooser: same view
    assert page.evaluate("({...atlasViewer.state})") == view
    assert not problems, problems


def test_make_test_installs_chromium_as_root_and_otherwise_says_how(tmp_path):
    """tools/browser.sh (make test's first step) with no Chromium on the PATH: run by a user who is not
    root it stops at once with the command to run; as root it runs apt-get. With Chromium it passes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("id", "echo 1000"), ("apt-get", "exit 1")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = ["/bin/bash", str(REPO / "tools/browser.sh")]
    missing = subprocess.run(script, env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    assert missing.returncode == 1
    assert "sudo apt-get install chromium fonts-dejavu-core" in missing.stderr
    # As root it installs it (apt-get here records how it was called).
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/apt.log\n')
    installed = subprocess.run(script, env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "apt.log").read_text() == "update -qq\ninstall -y -qq chromium fonts-dejavu-core\n"
    (bin_dir / "chromium").write_text("#!/bin/sh\n")
    (bin_dir / "chromium").chmod(0o755)
    found = subprocess.run(script, env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    assert found.returncode == 0 and not found.stderr
