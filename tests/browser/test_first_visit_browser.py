"""First visit of every page on a fresh server with an empty cache, in Debian's chromium
(issue #17 item 6): each page draws its first chart (or its main element) without an exception.
Functional only; the times are measured by ``bench/first_visit.py``.

The shipped demo runs are copied (config, weights, metrics, status; no ``cache/``) into a tmp
folder, so the disk cache is empty; one server serves all pages, each opened by its URL first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM_ARGS, REPO_CHECKPOINTS, serve

pytestmark = pytest.mark.browser

RUN_FILES = ("config.json", "model.safetensors", "metrics.jsonl", "status.json")
CHART = ".js-plotly-plot .main-svg"
PAGES = {  # url -> (demo run, the first element drawn)
    "": ("demo-vae-mnist5k", f"[data-testid='stDataFrame'], {CHART}"),
    "train": ("demo-vae-mnist5k", "[data-testid='stForm']"),
    "latent_map": ("demo-vae-mnist5k", CHART),
    "lookup": ("demo-vae-mnist5k", f"[data-testid='stFileUploader'], {CHART}"),
    "atoms": ("demo-scvae-mnist5k", CHART),
    "consistency": ("demo-vae-cr-mnist5k", CHART),
    "manifold": ("demo-ae-mnist5k", CHART),
    "compare": ("demo-vae-mnist5k", CHART),
    "large_datasets": ("demo-vae-mnist5k", "[data-testid='stMarkdown']"),
}
WAIT_ICON = """() => [...document.querySelectorAll('[data-testid="stAlertDynamicIcon"]')]
  .some(e => e.textContent.trim() === 'hourglass_top')"""
ICON_JS = """() => {
  const icons = [...document.querySelectorAll('[data-testid="stAlertDynamicIcon"]')];
  const hour = icons.find(e => e.textContent.trim() === 'hourglass_top');
  return hour ? {font: getComputedStyle(hour).fontFamily,
                 loaded: document.fonts.check('24px "Material Symbols Rounded"')} : null; }"""


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    for run in sorted({run for run, _ in PAGES.values()}):
        if not (REPO_CHECKPOINTS / run / "model.safetensors").is_file():
            pytest.fail(f"the shipped demo run {run} is missing from checkpoints/")
        (root / run).mkdir()
        for name in RUN_FILES:
            if (REPO_CHECKPOINTS / run / name).is_file():
                shutil.copy2(REPO_CHECKPOINTS / run / name, root / run / name)
    return root


def test_every_page_draws_its_first_chart_on_a_fresh_server(chromium, demo_root, tmp_path):
    from playwright.sync_api import sync_playwright

    with serve(demo_root, tmp_path) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        missing, failed = [], []
        for url, (run, selector) in PAGES.items():
            page.goto(f"{srv.url}/{url}?run={run}")
            try:
                page.locator(selector).first.wait_for(state="visible", timeout=90_000)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError, reported below
                missing.append(url or "home")
            if page.locator("[data-testid='stException']").count():
                failed.append(url or "home")
            if url == "atoms":  # the whole split is coded in the background: the notice's icon
                page.wait_for_function(WAIT_ICON, timeout=30_000)
                icon = page.evaluate(ICON_JS)
                page.screenshot(path=str(tmp_path / "atoms.png"))
                assert "Material Symbols" in icon["font"], icon  # a font Streamlit ships
                assert icon["loaded"], icon
        browser.close()
    log = srv.log.read_text()
    assert not missing, f"no first chart on {missing}; server log:\n{log[-3000:]}"
    assert not failed, f"exception on {failed}"
    assert "Traceback" not in log, log[-3000:]
