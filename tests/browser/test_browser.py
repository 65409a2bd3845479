"""The Latent map page in a real browser: deep link first on a fresh server, pick a run in the
sidebar, the WebGL chart draws every point, a box selection shows the gallery, no exception box,
no traceback in the server log. Saves ``tests/artifacts/latent_map.png`` (git-ignored)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lsx.viz.generate import GRID_NAME, MARK_NAME, PATH_NAME
from tests.browser.conftest import CHROMIUM_ARGS, REPO_CHECKPOINTS, serve

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
TIMEOUT_MS = 180_000  # a cold map encodes the data set (seconds on a contended CPU)
# data points only: the decode-anywhere click grid, paths and marks are overlays, not samples
OVERLAYS = json.dumps([GRID_NAME, PATH_NAME, MARK_NAME])
POINTS_JS = (
    "() => { const gd = document.querySelector('.js-plotly-plot'); const skip = " + OVERLAYS + ";"
    " return gd && gd._fullData ? gd._fullData.filter(t => !skip.includes(t.name))"
    ".reduce((s, t) => s + (t._length || 0), 0) : 0; }"
)
APP = "[data-testid='stApp']"


def wait_idle(page) -> None:
    """Connected, script not running, no skeletons left."""
    page.wait_for_selector(f"{APP}[data-test-connection-state='CONNECTED']", timeout=TIMEOUT_MS)
    page.wait_for_selector(f"{APP}[data-test-script-state='notRunning']", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=TIMEOUT_MS,
    )


@pytest.mark.browser
def test_latent_map_deep_link_pick_run_select_points(chromium, server, run_choice):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.goto(f"{server.url}/latent_map")  # deep link first, on a fresh server
            page.get_by_text("Pick a checkpoint").wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)

            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name=re.compile(re.escape(run_choice.name))).click()
            page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
            page.wait_for_function(f"({POINTS_JS})() > 0", timeout=TIMEOUT_MS)
            wait_idle(page)
            headline = page.get_by_text(
                re.compile(r"^Showing [\d,]+ of [\d,]+ points")
            ).inner_text()
            n_shown = int(re.match(r"Showing ([\d,]+)", headline).group(1).replace(",", ""))
            assert page.evaluate(POINTS_JS) == n_shown
            assert page.locator("[data-testid='stException']").count() == 0

            # box-select part of the map: ids come back through customdata -> gallery
            box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            x0, y0 = box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"]
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x0 + 0.2 * box["width"], y0 + 0.2 * box["height"], steps=10)
            page.mouse.move(x0 + 0.4 * box["width"], y0 + 0.4 * box["height"], steps=10)
            page.mouse.up()
            page.get_by_text(re.compile(r"Showing \d+ of \d+ selected")).wait_for(
                timeout=TIMEOUT_MS
            )
            wait_idle(page)
            assert page.locator("[data-testid='stImage']").count() >= 2  # gallery + decode panel
            assert page.locator("[data-testid='stException']").count() == 0

            ARTIFACTS.mkdir(exist_ok=True)
            page.mouse.move(5, 5)  # no hover label in the screenshot
            page.screenshot(path=str(ARTIFACTS / "latent_map.png"))
        finally:
            browser.close()
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.browser
def test_umap_is_fitted_in_the_background_and_the_map_switches_by_itself(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "checkpoints"  # a copy without a disk cache: UMAP must be fitted
    shutil.copytree(
        REPO_CHECKPOINTS / "demo-ae-digits",
        root / "demo-ae-digits",
        ignore=shutil.ignore_patterns("cache"),
    )
    with serve(root, tmp_path) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.goto(f"{server.url}/latent_map?run=demo-ae-digits")
            page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
            wait_idle(page)
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").nth(1).click()  # Projection
            page.get_by_role("option", name="UMAP").click()
            sidebar.get_by_role("button", name="Apply projection").click()
            # answered at once with PCA and a notice; the fragment switches to UMAP when done
            page.get_by_text("in the background").wait_for(timeout=30_000)
            # the notice is drawn before the map's caption in the same run: wait for both (the
            # switch to UMAP needs a tick of the 2 s polling fragment, so PCA is seen first)
            page.get_by_text(re.compile(r"PCA 2-D")).wait_for(timeout=30_000)
            assert page.get_by_text(re.compile(r"PCA 2-D")).count() == 1
            page.get_by_text(re.compile(r"UMAP 2-D")).wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            assert page.get_by_text("in the background").count() == 0
            assert page.evaluate(POINTS_JS) == 1797
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.browser
def test_home_first_visit_offline_names_home_shows_a_demo_map_and_deep_links_still_work(
    chromium, tmp_path
):
    from playwright.sync_api import sync_playwright

    demo = "demo-vae-mnist5k"
    root = tmp_path / "checkpoints"
    shutil.copytree(REPO_CHECKPOINTS / demo, root / demo)  # its disk cache too: a quick map
    with serve(root, tmp_path) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        outside: list[str] = []

        def local_only(route) -> None:  # as offline: anything not from our server fails
            if route.request.url.startswith((server.url, "data:", "blob:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.route("**/*", local_only)
            page.goto(server.url)
            page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
            page.wait_for_function(f"({POINTS_JS})() > 0", timeout=TIMEOUT_MS)
            wait_idle(page)
            nav = page.get_by_test_id("stSidebarNav")
            assert nav.get_by_text("Home", exact=True).count() == 1
            assert nav.get_by_text("app", exact=True).count() == 0
            assert page.evaluate(POINTS_JS) == 1000  # the demo's test split, by class
            picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
            assert picker.get_by_role("combobox").input_value().startswith(demo)
            link = page.get_by_role("link", name=re.compile("Next: explore this map"))
            assert link.count() == 1
            icon = page.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href")
            assert icon.startswith((server.url, "data:")), icon
            assert page.locator("[data-testid='stException']").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.mouse.move(5, 5)
            page.screenshot(path=str(ARTIFACTS / "home.png"))

            link.click()  # the next step: the Latent map of the same run
            page.get_by_text(re.compile(r"^Showing [\d,]+ of [\d,]+ points")).wait_for(
                timeout=TIMEOUT_MS
            )
            wait_idle(page)
            page.goto(f"{server.url}/compare?run={demo}")  # a deep link after the router ran
            page.get_by_text("Checkpoint B").wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()
    assert outside == [], outside  # every asset ships with lsx
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "WARNING" not in log, log[-3000:]
