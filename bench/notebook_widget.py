"""Render time of the notebook widget (lsx.notebook) in Debian's Chromium at 5k and 100k points.

    python bench/notebook_widget.py                 # 5,000 and 100,000 points, 3 repeats each
    python bench/notebook_widget.py --sizes 1000 --repeats 1

For each size: a widget built from random latents (16 dims, 10 classes), written to a standalone
page (lsx.notebook.widget_html: the shipped ESM plus a stand-in for the anywidget model, no
kernel), opened in Chromium. Reported (medians over the repeats): the bytes of the synced
buffers, the Python time to build the widget (PCA included), the in-page render time (import of
the ESM + first layout + first draw), the layout and draw parts, and a box selection: drag to the
message the widget would send to the kernel, and the redraw. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsx.analysis import project  # noqa: E402
from lsx.notebook.points import Points  # noqa: E402
from lsx.notebook.widget import widget_class, widget_html  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no request log on stderr
        pass


def build(n: int, seed: int = 0) -> tuple[object, float]:
    """A widget of ``n`` random points in 10 Gaussian classes; (widget, seconds to build)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    z = (rng.normal(size=(10, 16))[y] * 3 + rng.normal(size=(n, 16))).astype(np.float32)
    start = time.perf_counter()
    pts = Points(np.arange(n), np.zeros((n, 2)), z, rng.random(n).astype(np.float32),
                 {"label": y}, {"label": tuple(str(k) for k in range(10))})  # fmt: skip
    pts.xy = project(z, "pca", 2, seed=0)
    widget = widget_class()(pts, color="label", title=f"{n} points")
    return widget, time.perf_counter() - start


def measure(page, url: str) -> dict[str, float]:
    page.goto(url)
    page.wait_for_function("window.lsxReady === true", timeout=120_000)
    root = page.locator(".lsx-map")
    out = {
        "render_ms": page.evaluate("window.lsxRenderMs"),
        "layout_ms": float(root.get_attribute("data-layout-ms")),
        "draw_ms": float(root.get_attribute("data-draw-ms")),
    }
    box = page.locator("canvas").first.bounding_box()
    page.click("button[data-action=box]")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=2)
    saved = page.evaluate("window.lsxSaved.length")
    start = time.perf_counter()
    page.mouse.up()
    page.wait_for_function(f"window.lsxSaved.length > {saved}")
    out["select_roundtrip_ms"] = (time.perf_counter() - start) * 1000
    out["selected"] = page.evaluate("window.lsxSaved.at(-1).selected_index.length")
    out["redraw_ms"] = float(root.get_attribute("data-draw-ms"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="lsx-widget-bench-"))
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in args.sizes:
            widget, build_s = build(n)
            (folder / f"w{n}.html").write_text(widget_html(widget, thumbnails_up_to=0))
            runs = []
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": 1000, "height": 700})
                runs.append(measure(page, f"http://127.0.0.1:{server.server_port}/w{n}.html"))
                page.close()
            med = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
            results.append({
                "points": n,
                "buffer_bytes": len(widget.xy) + len(widget.values) + len(widget.ids),
                "page_bytes": (folder / f"w{n}.html").stat().st_size,
                "python_build_s": round(build_s, 3),
                **med,
            })  # fmt: skip
        version = browser.version
        browser.close()
    server.shutdown()
    print(json.dumps({"bench": "notebook_widget", "chromium": version, "repeats": args.repeats,
                      "results": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
