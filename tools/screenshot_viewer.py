"""Screenshot of a run's viewer, as in the README: headless Chromium (the system's), a view given as the
viewer's own link (#atlas=...&zoom=...), the mouse over one cell so its tooltip shows (by default the
kept cell nearest the centre of the view, whatever the layout's orientation on this machine).

    python -m tools.screenshot_viewer results/demo "#atlas=conv4&x=0.5&y=0.5&zoom=2" docs/demo-viewer.png
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SIZE = (1100, 760)


def hovered_cell(cells: list[dict], centre: tuple[float, float], cell: tuple[int, int] | None) -> dict:
    """The visible cell (row, col), or the one nearest the centre of the viewer's viewport."""
    if cell is not None:
        match = [c for c in cells if (c["row"], c["col"]) == tuple(cell)]
        if not match:
            raise SystemExit(f"cell {tuple(cell)} is not a kept cell in view")
        return match[0]
    if not cells:
        raise SystemExit("no kept cell in view")
    return min(cells, key=lambda c: (c["x"] - centre[0]) ** 2 + (c["y"] - centre[1]) ** 2)


def screenshot(
    run_dir: Path, view: str, out: Path, cell: tuple[int, int] | None = None, size: tuple[int, int] = SIZE
) -> None:
    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("needs Chromium: apt-get install chromium (or run tools/browser.sh as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        page.goto((Path(run_dir) / "viewer.html").resolve().as_uri() + view)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#tiles img')].every((t) => t.complete && t.naturalWidth > 0)"
        )
        box = page.locator("#viewport").bounding_box()
        centre = (box["width"] / 2, box["height"] / 2)
        target = hovered_cell(page.evaluate("atlasViewer.visibleCells()"), centre, cell)
        page.mouse.move(box["x"] + target["x"], box["y"] + target["y"])
        page.locator("#tooltip").wait_for(state="visible")
        page.wait_for_timeout(500)  # the thumbnails are CSS backgrounds: give them a moment
        page.screenshot(path=out)
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("view", help="the view, as in the viewer's 'Link to this view' (#atlas=...)")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--cell",
        type=int,
        nargs=2,
        metavar=("ROW", "COL"),
        help="hover this cell of the grid in view (row from the bottom)",
    )
    parser.add_argument("--size", type=int, nargs=2, default=SIZE, metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args()
    screenshot(args.run_dir, args.view, args.out, args.cell, tuple(args.size))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
