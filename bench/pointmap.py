"""The Latent map of a 10^5 and a 10^6-point store in Chromium: WebGL (every point) vs Plotly
(density raster + 5,000 markers); print JSON.

    python bench/pointmap.py                   # 100,000 and 1,000,000 points, 3 rounds
    python bench/pointmap.py --sizes 100000    # a quick run

Per size: a tiny ``ae`` run (8x8 inputs, latent 16, untrained: speed does not depend on the
weights) encodes n random 8x8 images into a store, and its PCA map is cached first (the
targets are "after the projection is cached"). One ``streamlit run app.py`` and Debian's
Chromium (headless, ``--disable-gpu``: software rendering, as in CI) then open the store's map
and, in rounds A, B, A, B (A: WebGL, B: Plotly, switched with the sidebar's Renderer radio):

- ``paint_s``: click on the renderer -> the map drawn (WebGL: the component's ``data-ready``;
  Plotly: its plot with every trace drawn): server rerun, transfer, parse, first frame;
- ``selection_s``: mouse up after a lasso (WebGL; polygon sent, ids computed over every point
  in Python) or a box (Plotly; the selected markers' ids sent) -> "Showing k of m selected" and
  the gallery's images on the page;
- WebGL only: ``frame_ms`` (median of 10 wheel zooms, each re-rendering every point: the
  component's own timing, ``gl.finish`` included) and the renderer the browser gave
  (``webgl`` or the ``canvas2d`` fallback);
- payload bytes (WebGL: the binary payload; Plotly: the figure's JSON), computed in-process the
  same way the app does; the server's RSS now and at peak (``VmRSS``, ``VmHWM``).
Targets (issue 14): first paint < 5 s and selection round trip < 1 s at 10^6; server RSS
<= 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _server import CHROMIUM_ARGS, start_server, stop  # bench/_server.py
from encode import write_source  # bench/encode.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
RUN = "bench-pointmap"
WAIT_MS = 180_000
MAP, PLOT = ".lsx-pointmap", ".js-plotly-plot"
APP = "[data-testid='stApp']"


def make_store(root: Path, data: Path, n: int) -> tuple[Path, dict[str, Any]]:
    """The run, its store of n points (random 8x8 images, 10 labels), the PCA map cached."""
    import torch

    from lsx.checkpoint import save_checkpoint, weights_sha256
    from lsx.data.lazy import open_source
    from lsx.latents.projections import cached_store_projection
    from lsx.latents.store import store_dir_for
    from lsx.latents.writer import encode_to_store
    from lsx.models import build_model, make_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=16, hidden_dim=16, arch="mlp")
    model = build_model(config).eval()
    run_dir = root / RUN
    save_checkpoint(model, config, run_dir, train={"epochs": 0})
    write_source(data / "x.npy", n, 8)  # bench/encode.py: chunked random images, 10 labels
    source = open_source(f"npy:{data / 'x.npy'}")
    start = time.perf_counter()
    store = encode_to_store(model, source, store_dir_for(run_dir, source.spec, "all"),
                            checkpoint_sha=weights_sha256(run_dir), batch_size=8192)  # fmt: skip
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    cached_store_projection(store, "pca", 2, 0)
    return store.path, {"encode_s": round(encode_s, 1),
                        "pca_s": round(time.perf_counter() - start, 2)}  # fmt: skip


def payload_sizes(store_path: Path) -> dict[str, int]:
    """Bytes the browser receives for the map, built as the app builds them."""
    from lsx.app.store_map import color_values, make_frame, store_figure
    from lsx.latents.projections import cached_store_projection
    from lsx.latents.store import open_store
    from lsx.viz.pointmap import encode_points

    store = open_store(store_path)
    coords, manifest, _ = cached_store_projection(store, "pca", 2, 0)
    cv = color_values(store, f"label:{store.primary}")
    webgl = encode_points(coords, cv.values, categories=cv.categories, title=cv.title)
    plotly = store_figure(make_frame(store, coords, manifest, store.primary)).to_json()
    return {"webgl_payload_bytes": len(webgl), "plotly_figure_json_bytes": len(plotly)}


def status_mib(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def idle(page) -> None:
    page.wait_for_selector(f"{APP}[data-test-script-state='notRunning']", timeout=WAIT_MS)


def switch(page, renderer: str) -> float:
    """Seconds from clicking the renderer to the map drawn."""
    sidebar = page.get_by_test_id("stSidebar")
    start = time.perf_counter()
    sidebar.get_by_text("WebGL: every point" if renderer == "webgl" else "Plotly",
                        exact=True).click()  # fmt: skip
    if renderer == "webgl":
        page.wait_for_selector(f"{MAP}[data-ready='1']", timeout=WAIT_MS)
    else:
        page.wait_for_selector(MAP, state="detached", timeout=WAIT_MS)
        page.wait_for_function(
            f"() => {{ const p = document.querySelector('{PLOT}');"
            " return p && p._fullData && p._fullData.length > 0 &&"
            " p.querySelector('.gl-container canvas, .scatterlayer') !== null; }",
            timeout=WAIT_MS,
        )
    seconds = time.perf_counter() - start
    idle(page)
    return seconds


def select(page, renderer: str, r: int) -> tuple[float, int]:
    """Lasso (WebGL) or box (Plotly) near the middle of the map (moved a little each round, so
    every round is a new selection); seconds from mouse up to the new gallery."""
    if renderer == "webgl":
        page.get_by_role("button", name="Lasso").click()
        box = page.locator(f"{MAP} canvas").first.bounding_box()
    else:
        box = page.locator(f"{PLOT} .nsewdrag").first.bounding_box()
    f = 0.4 + 0.02 * r
    x0, y0 = box["x"] + f * box["width"], box["y"] + f * box["height"]
    x1, y1 = box["x"] + (f + 0.2) * box["width"], box["y"] + (f + 0.2) * box["height"]
    before = page.get_by_text(re.compile(r"Showing \d+ of \d+ selected")).all_inner_texts()
    page.mouse.move(x0, y0)
    page.mouse.down()
    if renderer == "webgl":  # a lasso along the box's edges
        for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            page.mouse.move(x, y, steps=8)
    else:  # Plotly's box select (its default drag mode here)
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=10)
        page.mouse.move(x1, y1, steps=10)
    start = time.perf_counter()
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"Showing \d+ of \d+ selected"))
    old = json.dumps(before[0] if before else "")
    page.wait_for_function(  # a new selection's caption
        "() => { const e = [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
        f".find(c => /Showing \\d+ of \\d+ selected/.test(c.innerText));"
        f" return e && e.innerText !== {old}; }}",
        timeout=WAIT_MS,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-testid='stImageContainer'] img\")]"
        ".some(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    seconds = time.perf_counter() - start
    selected = int(re.findall(r"\d+", caption.inner_text())[1])
    idle(page)
    if renderer == "webgl":
        page.get_by_role("button", name="Pan / zoom").click()
    return seconds, selected


def frame_ms(page) -> float:
    box = page.locator(f"{MAP} canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    times = []
    for _ in range(10):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(150)
        times.append(float(page.locator(MAP).get_attribute("data-frame-ms")))
    return statistics.median(times)


def measure(n: int, rounds: int, chromium: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="lsx-bench-pointmap-") as tmp:
        root, data = Path(tmp) / "checkpoints", Path(tmp) / "data"
        root.mkdir()
        data.mkdir()
        store_path, setup = make_store(root, data, n)
        row: dict[str, Any] = {"n": n, **setup, **payload_sizes(store_path)}
        env = {"LSX_UMAP_WARMUP": "0", "LSX_DATA_ROOTS": str(data)}
        proc, url, _ = start_server(root, Path(tmp) / "server.log", env=env)
        runs: list[dict[str, Any]] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1500, "height": 1300})
                page.goto(f"{url}/latent_map?run={RUN}")
                sidebar = page.get_by_test_id("stSidebar")
                pick = sidebar.get_by_test_id("stSelectbox").filter(has_text="Map of")
                pick.wait_for(timeout=WAIT_MS)
                idle(page)
                pick.click()
                start = time.perf_counter()
                page.get_by_role("option", name=re.compile(rf"\({n:,} × 16\)")).click()
                page.wait_for_selector(f"{MAP}[data-ready='1']", timeout=WAIT_MS)
                row["open_store_webgl_s"] = round(time.perf_counter() - start, 2)
                idle(page)
                row["renderer"] = page.locator(MAP).get_attribute("data-renderer")
                row["browser_first_paint_ms"] = float(
                    page.locator(MAP).get_attribute("data-first-paint-ms")
                )
                switch(page, "plotly")  # so the first A starts from the other renderer
                for r in range(rounds):
                    for renderer in ("webgl", "plotly"):
                        paint = switch(page, renderer)
                        sel, count = select(page, renderer, r)
                        run = {"round": r + 1, "renderer": renderer, "paint_s": round(paint, 2),
                               "selection_s": round(sel, 2), "selected": count}  # fmt: skip
                        if renderer == "webgl":
                            run["frame_ms"] = frame_ms(page)
                        runs.append(run)
                        print(json.dumps({"n": n, **run}), file=sys.stderr)
                assert page.locator("[data-testid='stException']").count() == 0
                browser.close()
            row["server_mib"] = status_mib(proc.pid)
        finally:
            stop(proc)
        for renderer in ("webgl", "plotly"):
            mine = [x for x in runs if x["renderer"] == renderer]
            row[f"{renderer}_paint_s_median"] = statistics.median(x["paint_s"] for x in mine)
            row[f"{renderer}_selection_s_median"] = statistics.median(
                x["selection_s"] for x in mine
            )
        row["webgl_frame_ms_median"] = statistics.median(
            x["frame_ms"] for x in runs if "frame_ms" in x
        )
        row["runs"] = runs
        return row


def main() -> None:
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3, help="A,B pairs")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    rows = [measure(n, args.rounds, chromium) for n in args.sizes]
    print(json.dumps({
        "bench": "pointmap",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "chromium_args": CHROMIUM_ARGS,
        "order": "A,B,A,B (A: WebGL every point, B: Plotly raster + 5,000 markers)",
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "rows": rows,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
