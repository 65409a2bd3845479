"""Latency of the Latent map page, server side (AppTest) and end to end (streamlit + chromium).

    python bench/app_latency.py                       # the mnist5k demo run, 5,000 points
    python bench/app_latency.py --run checkpoints/demo-ae-digits --no-browser

Prints one JSON object:

- ``apptest``: the page's server-side run time under ``streamlit.testing.v1.AppTest``, each in a
  fresh Python process. Not timed: imports (torch, plotly, lsx), AppTest's own first-run set-up,
  and loading the dataset (``dataset_load_s``, once per server process; lsx.data caches it).
  ``cold_s``: empty disk cache (encode + project); ``warm_rerun_s``: same session, second run
  (in-memory caches); ``warm_rerun_mean_s``: mean of 5 more; ``warm_disk_s``: new process, disk
  cache warm, in-memory caches cold.
- ``browser``: seconds from starting ``streamlit run app.py`` to ``/_stcore/health`` answering
  (``server_ready_s``) and to the Plotly chart being drawn with all its points (``chart_s``) on
  the Latent map page (deep link ``/latent_map?run=<name>``) in Debian's chromium; then the
  same in a second tab of that server (``second_tab_chart_s``, in-memory caches warm). ``cold``:
  empty disk cache; ``warm_disk``: a new server process with the disk cache warm.

The run folder is copied to a temporary checkpoints folder first, so its own cache is untouched.
Target (issue): warm server-side run < 1 s for 5,000 points.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, copy_run, start_server, stop  # bench/_server.py

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "2_latent_map.py"
DEFAULT_RUN = ROOT / "checkpoints" / "demo-vae-mnist5k"
POINTS_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
  return gd && gd._fullData ? gd._fullData.reduce((s, t) => s + (t._length || 0), 0) : 0; }"""


# ------------------------------------------------------------------------------ AppTest


def apptest_once(run_dir: Path, reruns: int) -> dict:
    """In this process: first page run, then ``reruns`` more in the same session."""
    os.environ["LSX_CHECKPOINTS"] = str(run_dir.parent)
    sys.path.insert(0, str(ROOT))
    import plotly.graph_objects  # noqa: F401  (imports are not what we measure)
    from streamlit.testing.v1 import AppTest  # noqa: TID251  (a benchmark of the app)

    import lsx.app.widgets  # noqa: F401
    from lsx.app.cache import run_dataset

    AppTest.from_string("import streamlit as st\nst.write(1)").run()  # AppTest's own warm-up
    start = time.perf_counter()
    run_dataset(str(run_dir))  # lsx.data caches it per process, as a server would
    data_s = time.perf_counter() - start
    at = AppTest.from_file(str(PAGE), default_timeout=600)
    at.session_state["run_dir"] = str(run_dir)
    start = time.perf_counter()
    at.run(timeout=600)
    first = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"page failed: {[e.value for e in [*at.exception, *at.error]]}")
    times = []
    for _ in range(reruns):
        start = time.perf_counter()
        at.run(timeout=600)
        times.append(time.perf_counter() - start)
    headline = next(m.value for m in at.markdown if m.value.startswith("Showing"))
    return {
        "dataset_load_s": round(data_s, 3),
        "first_s": round(first, 3),
        "reruns_s": [round(t, 3) for t in times],
        "headline": headline,
    }


def apptest(run_dir: Path) -> dict:
    def child() -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(run_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold, warm = child(), child()
    return {
        "dataset_load_s": cold["dataset_load_s"],
        "cold_s": cold["first_s"],
        "warm_rerun_s": cold["reruns_s"][0],
        "warm_rerun_mean_s": round(statistics.mean(cold["reruns_s"][1:] or [0.0]), 3),
        "warm_disk_s": warm["first_s"],
        "headline": cold["headline"],
    }


# ------------------------------------------------------------------------------ browser


def time_to_chart(run_dir: Path) -> dict[str, float]:
    """Seconds from ``streamlit run`` (new process) to the server answering, to the chart drawn,
    and for a second browser tab on the same server (in-memory caches warm)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        server, url, ready = start_server(run_dir.parent, None, timeout=60.0)
        start = time.perf_counter() - ready  # the chart time counts from the server's start
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/latent_map?run={run_dir.name}")
            page.wait_for_function(POINTS_JS, timeout=600_000)
            chart = time.perf_counter() - start
            start = time.perf_counter()
            second = browser.new_page(viewport={"width": 1400, "height": 1000})
            second.goto(f"{url}/latent_map?run={run_dir.name}")
            second.wait_for_function(POINTS_JS, timeout=600_000)
            return {
                "server_ready_s": round(ready, 2),
                "chart_s": round(chart, 2),
                "second_tab_chart_s": round(time.perf_counter() - start, 2),
            }
        finally:
            stop(server)
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN, help="run folder to map")
    parser.add_argument("--no-browser", action="store_true", help="skip the chromium part")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(apptest_once(args.child, reruns=6)))
        return
    run_dir = args.run.resolve()
    if not (run_dir / "model.safetensors").is_file():
        raise SystemExit(f"{run_dir} is not a run folder; train one or pass --run DIR.")
    result: dict = {"run": run_dir.name, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="lsx-bench-") as tmp:
        result["apptest"] = apptest(copy_run(run_dir, Path(tmp) / "a"))
        if not args.no_browser:
            browser_run = copy_run(run_dir, Path(tmp) / "b")
            result["browser"] = {
                "cold": time_to_chart(browser_run),
                "warm_disk": time_to_chart(browser_run),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
