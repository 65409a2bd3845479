"""The notebook widget's JavaScript (lsx/notebook/assets/scatter.js) in Debian's Chromium.

What runs: the shipped ESM, loaded the way anywidget loads it (a Blob URL import), in the page
that :func:`lsx.notebook.widget_html` writes, against a stand-in for the anywidget model (``get``,
``set``, ``save_changes``, ``on``, ``off``, ``send``), with the data of a real ``explore()``.
Checked: every point is drawn, a box and a lasso drag send back exactly the points inside, a
selection set from the Python side is drawn, and hovering a point asks for its thumbnail and shows
it. Not run here: the Jupyter comm between that model and the kernel (anywidget's and
ipywidgets' own code), and JupyterLab itself; the Python side of those messages is tested in
tests/test_notebook.py and in a real kernel by tests/test_notebook_example.py.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from lsx.notebook import explore, widget_html
from tests.browser.conftest import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
PAD = 12  # scatter.js: margin in CSS pixels around the points


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no request log on stderr
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(widget, url of its standalone page) served over HTTP from a temporary folder."""
    folder = tmp_path_factory.mktemp("widget")
    widget = explore(ROOT / "checkpoints" / "demo-vae-digits")
    (folder / "index.html").write_text(widget_html(widget), encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield widget, f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()


def _pixels(widget, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Where scatter.js draws each point, in CSS pixels inside the canvas (same arithmetic)."""
    xy = np.frombuffer(widget.xy, np.float32).reshape(-1, 2).astype(np.float64)
    lo, hi = xy.min(0), xy.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1)
    px = PAD + (xy[:, 0] - lo[0]) * (width - 2 * PAD) / span[0]
    py = height - PAD - (xy[:, 1] - lo[1]) * (height - 2 * PAD) / span[1]
    return px, py


def test_widget_draws_selects_and_hovers_in_chromium(served, chromium):
    from playwright.sync_api import sync_playwright

    widget, url = served
    n = len(widget.selection_frame())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url)
        page.wait_for_function("window.lsxReady === true", timeout=15_000)
        assert not errors
        canvas = page.locator("canvas").first
        assert canvas.get_attribute("data-drawn") == str(n)
        coloured = page.evaluate(
            """() => { const c = document.querySelector('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i+1] < 250) k++;
            return k; }"""
        )
        assert coloured >= n  # every point covers at least one non-white pixel
        w, h = page.evaluate("[document.querySelector('canvas').clientWidth, "
                             "document.querySelector('canvas').clientHeight]")  # fmt: skip
        box = canvas.bounding_box()
        left, top = box["x"] + 1, box["y"] + 1  # inside the 1-px border
        px, py = _pixels(widget, w, h)

        # box selection: exactly the points inside the dragged rectangle come back
        page.click("button[data-action=box]")
        x0, y0, x1, y1 = w * 0.2, h * 0.2, w * 0.6, h * 0.7
        page.mouse.move(left + x0, top + y0)
        page.mouse.down()
        page.mouse.move(left + x1, top + y1, steps=4)
        page.mouse.up()
        got = set(page.evaluate("window.lsxSaved.at(-1).selected_index"))
        expected = set(np.flatnonzero((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)).tolist())
        assert 0 < len(expected) < n
        assert len(got ^ expected) <= 2, (len(got), len(expected))  # pixel-edge rounding only
        widget.selected_index = sorted(got)  # what the kernel receives, back to ids in Python
        assert set(widget.selection) == got  # ids of this map are positions 0..n-1
        assert f"{len(got)} selected" in page.inner_text(".lsx-map")

        # lasso: a triangle; every point sent back lies in its bounding box, and most inside
        page.click("button[data-action=lasso]")
        tri = [(w * 0.5, h * 0.1), (w * 0.9, h * 0.9), (w * 0.1, h * 0.9)]
        page.mouse.move(left + tri[0][0], top + tri[0][1])
        page.mouse.down()
        for x, y in [*tri[1:], tri[0]]:
            page.mouse.move(left + x, top + y, steps=6)
        page.mouse.up()
        lasso = np.array(page.evaluate("window.lsxSaved.at(-1).selected_index"), dtype=int)
        assert len(lasso) > 0
        assert (py[lasso] >= h * 0.1 - 1).all()
        assert (py[lasso] <= h * 0.9 + 1).all()
        apex_y = h * 0.1 + (h * 0.8) * np.abs(px[lasso] - w * 0.5) / (w * 0.4)
        assert (py[lasso] >= apex_y - 2).all()  # below the two upper edges: inside the triangle

        # a selection set from Python (a change event from the kernel) is drawn
        page.evaluate("window.lsxModel.set('selected_index', [0, 1, 2])")
        assert "3 selected" in page.inner_text(".lsx-map")

        # hover: the widget asks for the point's thumbnail and shows it
        target = int(np.argmin((px - w / 2) ** 2 + (py - h / 2) ** 2))
        page.mouse.move(left + px[target], top + py[target])
        page.wait_for_function(
            "document.querySelector('.lsx-map img').src.startsWith('data:image/png')",
            timeout=5_000,
        )
        asked = page.evaluate("window.lsxSent.at(-1)")
        assert asked["type"] == "thumbs"
        hovered = asked["index"][0]
        assert (px[hovered] - px[target]) ** 2 + (py[hovered] - py[target]) ** 2 <= 64
        assert f"id {hovered}" in page.inner_text(".lsx-map")
        assert not errors
        browser.close()
