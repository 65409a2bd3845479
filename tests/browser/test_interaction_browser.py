"""The Latent map's interaction in a real browser: a URL with every view field reproduces the
view, a small box over an empty spot of the map decodes it (the invisible click grid of
lsx.viz.generate), changing the view updates the URL, tagging a selection writes the run's tag
file. Uses a tiny run in a temporary checkpoints folder (tags are written there, not into the
shipped demos). Saves ``tests/artifacts/interaction.png`` (git-ignored)."""

from __future__ import annotations

import pytest

from lsx.tags import read_tags
from tests.browser.conftest import CHROMIUM_ARGS, _tiny_run, serve
from tests.browser.test_browser import ARTIFACTS, TIMEOUT_MS, wait_idle


@pytest.mark.browser
@pytest.mark.slow  # about 40 s (server start, chromium, encoding): run with --runslow
def test_url_view_decode_anywhere_and_tag(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    choice = _tiny_run(tmp_path / "checkpoints")
    query = "proj=pca&seed=0&dims=2&color=label%3Adigit&split=test&ids=1500,1501"
    with serve(choice.root, tmp_path) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1600})
            page.goto(f"{server.url}/latent_map?run={choice.name}&{query}")
            page.get_by_text("test split · PCA 2-D").first.wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            page.get_by_text("Showing 2 of 2 selected (link").first.wait_for(timeout=TIMEOUT_MS)
            assert "split=test" in page.url
            assert "ids=1500%2C1501" in page.url.replace(",", "%2C")
            page.get_by_text("Rule: PCA inverse (exact)").first.wait_for(timeout=TIMEOUT_MS)
            # a small box over an empty spot near the top-left corner: grid nodes, no data
            box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            x, y = box["x"] + 0.01 * box["width"], box["y"] + 0.01 * box["height"]
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 25, y + 25, steps=5)
            page.mouse.up()
            page.get_by_text("extrapolation").first.wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
            # tag the link's selection from the sidebar
            page.get_by_label("Tag name").fill("two tests")
            page.get_by_role("button", name="Tag the selection").click()
            page.get_by_text("Saved tag 'two tests'").first.wait_for(timeout=TIMEOUT_MS)
            assert read_tags(choice.root / choice.name)["two tests"].tolist() == [1500, 1501]
            wait_idle(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "interaction.png"), full_page=True)
        finally:
            browser.close()
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
