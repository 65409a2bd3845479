"""Does Embedding Atlas's Streamlit component work offline, in headless Chromium? Print JSON.

    python bench/embedding_atlas_offline.py            # 100,000 points
    python bench/embedding_atlas_offline.py --n 1000000

A candidate renderer of issue 14. In a throw-away virtual environment that sees this
environment's packages (``--system-site-packages``: streamlit, pandas, pyarrow, torch 2.13.0
untouched), ``pip install --no-deps embedding-atlas==0.26.0 duckdb`` (its declared dependencies
would bring sentence-transformers, transformers, accelerate, litellm and an unpinned torch; the
Streamlit component needs none of them to import). A one-page Streamlit app shows n points
(10 blobs) with ``embedding_atlas(df, x=..., y=...)``; Chromium (headless, ``--disable-gpu``, the
flags of the other browser benches) opens it; the JSON says whether a canvas appeared in the
component's iframe within ``--wait`` seconds, and the browser console's last messages (where a
network fetch at run time shows up). Needs PyPI for the install; the app itself is served from
this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, free_port  # bench/_server.py

APP = """
import os
import numpy as np
import pandas as pd
import streamlit as st
from embedding_atlas.streamlit import embedding_atlas

n = int(os.environ["EA_N"])
rng = np.random.default_rng(0)
y = rng.integers(0, 10, n)
xy = rng.normal(0, 6, size=(10, 2))[y] + rng.normal(size=(n, 2))
df = pd.DataFrame({"id": np.arange(n), "x": xy[:, 0], "y": xy[:, 1], "label": y.astype(str)})
st.write(f"frame of {n:,} rows")
sel = embedding_atlas(df, x="x", y="y", text="label", key="ea", labels="disabled")
st.write("component mounted; predicate:", (sel or {}).get("predicate"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds for a canvas")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    out: dict = {"bench": "embedding_atlas_offline", "n": args.n, "version": "0.26.0"}
    with tempfile.TemporaryDirectory(prefix="lsx-bench-ea-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)  # fmt: skip
        py = str(venv / "bin" / "python")
        start = time.perf_counter()
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "embedding-atlas==0.26.0",
                        "duckdb"], check=True)  # fmt: skip
        out["install_s"] = round(time.perf_counter() - start, 1)
        app = Path(tmp) / "app.py"
        app.write_text(APP)
        port = free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [py, "-m", "streamlit", "run", str(app), "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            env={**os.environ, "EA_N": str(args.n)}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            time.sleep(6)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                console: list[str] = []
                page.on("console", lambda m: console.append(m.text))
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text(re.compile("component mounted")).wait_for(timeout=120_000)
                out["script_done_s"] = round(time.perf_counter() - start, 2)
                try:
                    canvas = page.frame_locator("iframe").first.locator("canvas").first
                    canvas.wait_for(timeout=args.wait * 1000)
                    out["canvas_after_s"] = round(time.perf_counter() - start, 2)
                except Exception:  # noqa: BLE001  (playwright's timeout: no canvas drawn)
                    out["canvas_after_s"] = None
                out["rendered"] = out["canvas_after_s"] is not None
                out["fetches_from_network"] = sorted(
                    set(re.findall(r"https?://[^\s'\"]+", " ".join(console)))
                )
                out["console_tail"] = console[-5:]
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
