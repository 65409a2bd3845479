"""First visit of every page on a fresh server with an empty cache, in Debian's chromium.

    python bench/first_visit.py                      # every page, one fresh server each
    python bench/first_visit.py --pages atoms consistency
    python bench/first_visit.py --pages latent_map compare "" --repeat 3   # medians of 3

For each page a NEW ``streamlit run app.py`` starts on a free localhost port with
``LSX_CHECKPOINTS`` pointing at a temporary copy of the shipped demo runs (config, weights,
metrics, status: no ``cache/`` folder, so the disk cache is empty). Headless chromium opens
``/<page>?run=<demo run>`` and the clock runs from the navigation to the page's first chart
drawn (a Plotly ``.main-svg``; for pages whose first element is not a chart, the element named
in ``PAGES``); ``title_s`` is the time to the page's title, the first sign of progress. Then a
second tab of the same server opens the same URL (``warm_s``: in-memory and disk caches warm).
``server_ready_s`` (process start to ``/_stcore/health``) is not counted.

Prints one JSON object: ``{"pages": {name: {"run", "title_s", "first_s", "warm_s",
"exception", "runs"}}, ...}``; with ``--repeat N`` each page gets N fresh servers, the times
are medians and ``runs`` lists every run (a timeout counts as infinitely slow).
The server's UMAP warm-up (lsx.app.background) runs as it would for a user; ``--no-warmup`` sets
``LSX_UMAP_WARMUP=0`` to measure without it. Target (issue #17 item 6): first < 10 s, warm < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, copy_demos, start_server, stop  # bench/_server.py

ROOT = Path(__file__).resolve().parents[1]
CHART = ".js-plotly-plot .main-svg"
# page url -> (demo run, CSS selector of its first "chart"). Home and Train show no Plotly chart
# first: their main element is the runs table / the training form.
PAGES = {
    "": ("demo-vae-mnist5k", "[data-testid='stDataFrame'], " + CHART),
    "train": ("demo-vae-mnist5k", "[data-testid='stForm']"),
    "latent_map": ("demo-vae-mnist5k", CHART),
    "lookup": ("demo-vae-mnist5k", f"[data-testid='stFileUploader'], {CHART}"),
    "atoms": ("demo-scvae-mnist5k", CHART),
    "consistency": ("demo-vae-cr-mnist5k", CHART),
    "manifold": ("demo-ae-mnist5k", CHART),
    "compare": ("demo-vae-mnist5k", CHART),
    "large_datasets": ("demo-vae-mnist5k", "[data-testid='stMarkdown']"),
}
EXCEPTION = "[data-testid='stException']"
TITLE = "h1"  # st.title: the first thing every page draws
POLL_MS = 50


def time_visit(
    browser, url: str, selector: str, timeout_s: float
) -> tuple[float | None, float | None, bool]:
    """Seconds from navigation to the page's title (``h1``) and to ``selector`` visible (None:
    not within the timeout), and whether the page showed a Streamlit exception box.

    The title is the first sign of progress the user sees; the gap to the chart is the rest of
    the request plus the browser drawing it (plotly.js)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    title_s: float | None = None
    seconds: float | None = None
    while time.perf_counter() - start < timeout_s:
        if title_s is None and page.locator(TITLE).first.is_visible():
            title_s = round(time.perf_counter() - start, 2)
        if page.locator(selector).first.is_visible():
            seconds = round(time.perf_counter() - start, 2)
            break
        page.wait_for_timeout(POLL_MS)
    exception = page.locator(EXCEPTION).count() > 0
    page.close()
    return title_s, seconds, exception


def visit_page(name: str, tmp: Path, timeout_s: float, warmup: bool) -> dict:
    from playwright.sync_api import sync_playwright

    run, selector = PAGES[name]
    root = tmp / name.replace("/", "_") / "checkpoints"
    copy_demos(root)
    proc, url, ready = start_server(
        root, root.parent / "streamlit.log", None if warmup else {"LSX_UMAP_WARMUP": "0"}, 60.0
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            title, first, exc1 = time_visit(browser, f"{url}/{name}?run={run}", selector, timeout_s)
            _, warm, exc2 = time_visit(browser, f"{url}/{name}?run={run}", selector, timeout_s)
            browser.close()
    finally:
        stop(proc)
    return {
        "run": run,
        "server_ready_s": round(ready, 2),
        "title_s": title,
        "first_s": first,
        "warm_s": warm,
        "exception": exc1 or exc2,
    }


def median(values: list[float | None]) -> float | None:
    """Median, a None (timed out) counting as slower than any number; None if that is the one."""
    ranked = sorted(values, key=lambda v: float("inf") if v is None else v)
    return ranked[(len(ranked) - 1) // 2]  # the lower middle: never a mean of two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", nargs="*", default=list(PAGES), help="page urls ('' = home)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per visit")
    parser.add_argument("--no-warmup", action="store_true", help="LSX_UMAP_WARMUP=0")
    parser.add_argument("--repeat", type=int, default=1, help="fresh servers per page (median)")
    args = parser.parse_args()
    load_before = [round(v, 2) for v in os.getloadavg()]  # other work on the machine skews it
    out: dict = {"pages": {}}
    with tempfile.TemporaryDirectory(prefix="lsx-first-visit-") as tmp:
        for name in args.pages:
            runs = []
            for i in range(args.repeat):
                runs.append(visit_page(name, Path(tmp) / str(i), args.timeout, not args.no_warmup))
                print(json.dumps({name or "home": runs[-1]}), file=sys.stderr)
            out["pages"][name or "home"] = {
                "run": runs[0]["run"],
                **{k: median([r[k] for r in runs]) for k in ("title_s", "first_s", "warm_s")},
                "exception": any(r["exception"] for r in runs),
                "runs": runs,
            }
    out["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    out["machine"]["load_average_before_after"] = [
        load_before,
        [round(v, 2) for v in os.getloadavg()],
    ]
    out["warmup"] = not args.no_warmup
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
