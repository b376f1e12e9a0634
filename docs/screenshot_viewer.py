"""Screenshot of a run's viewer, as in the README: headless Chromium (the system's), a view given as the
viewer's own link (#atlas=...&zoom=...), the mouse over one cell so its tooltip shows.

    python docs/screenshot_viewer.py results/demo "#atlas=conv4&x=0.5&y=0.5&zoom=2" --cell 7 9 docs/demo-viewer.png
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("view", help="the view, as in the viewer's 'Link to this view' (#atlas=...)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell", type=int, nargs=2, metavar=("ROW", "COL"),
                        help="hover this cell of the grid in view (row from the bottom)")
    parser.add_argument("--size", type=int, nargs=2, default=(1100, 760), metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("needs Chromium: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.size[0], "height": args.size[1]})
        page.goto((args.run_dir / "viewer.html").resolve().as_uri() + args.view)
        page.wait_for_function("() => [...document.querySelectorAll('#tiles img')]"
                               ".every((t) => t.complete && t.naturalWidth > 0)")
        if args.cell:
            cells = page.evaluate("atlasViewer.visibleCells()")
            match = [c for c in cells if (c["row"], c["col"]) == tuple(args.cell)]
            if not match:
                raise SystemExit(f"cell {args.cell} is not a kept cell in view")
            box = page.locator("#viewport").bounding_box()
            page.mouse.move(box["x"] + match[0]["x"], box["y"] + match[0]["y"])
            page.locator("#tooltip").wait_for(state="visible")
            page.wait_for_timeout(500)   # the thumbnails are CSS backgrounds: give them a moment
        page.screenshot(path=args.out)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
