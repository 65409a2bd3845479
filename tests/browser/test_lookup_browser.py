"""The Lookup page in a real browser: deep link with ``?run=``, upload a PNG, a garbage file, a GIF
and an SVG through the file chooser, see the per-file results (one prediction, one message each,
visible without hovering: the uploader accepts every type and Python says why it refuses one), no
exception box, no traceback in the server log. Saves ``tests/artifacts/lookup.png``
(git-ignored)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import CHROMIUM_ARGS, REPO_CHECKPOINTS, serve
from tests.browser.test_browser import ARTIFACTS, TIMEOUT_MS, wait_idle

RUN = "demo-sae-digits"


def _png() -> bytes:
    a = np.zeros((64, 64), dtype=np.uint8)
    a[8:56, 28:36] = 255  # a thick "1"
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.browser
@pytest.mark.slow  # about 40 s (server start, chromium, encoding): run with --runslow
def test_upload_two_files_in_the_browser(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    if not (REPO_CHECKPOINTS / RUN / "model.safetensors").is_file():
        pytest.fail(f"the shipped demo run {RUN} is missing; run `python -m lsx demo --only {RUN}`")
    with serve(REPO_CHECKPOINTS, tmp_path) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.goto(f"{server.url}/lookup?run={RUN}")
            page.get_by_text("nearest configured centre").first.wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            with page.expect_file_chooser() as chooser:
                page.get_by_test_id("stFileUploaderDropzone").click()
            chooser.value.set_files(
                files=[
                    {"name": "one.png", "mimeType": "image/png", "buffer": _png()},
                    {"name": "junk.png", "mimeType": "image/png", "buffer": b"not an image"},
                    {"name": "anim.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + bytes(20)},
                    {"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": b"<svg/>"},
                ]
            )
            page.get_by_text("junk.png is not an image lsx can read").first.wait_for(
                timeout=TIMEOUT_MS
            )
            alerts = page.get_by_test_id("stAlert")
            for name, kind in (("anim.gif", "GIF (.gif)"), ("logo.svg", "SVG (.svg)")):
                shown = alerts.filter(has_text=f"{name} has the type {kind}").first
                shown.wait_for(timeout=TIMEOUT_MS)
                assert shown.is_visible()  # on the page, not in a hover tooltip
            page.get_by_text("nearest images").first.wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stImage']").count() >= 2  # triptych + gallery
            page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
            ARTIFACTS.mkdir(exist_ok=True)
            page.mouse.move(5, 5)
            page.screenshot(path=str(ARTIFACTS / "lookup.png"), full_page=True)
        finally:
            browser.close()
        log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.browser  # about 10 s on 2 cores (server start, chromium, calibration)
def test_a_photo_on_the_mnist_vae_leads_with_out_of_distribution(chromium, tmp_path):
    from playwright.sync_api import sync_playwright
    from skimage.data import astronaut

    run = "demo-vae-mnist5k"
    if not (REPO_CHECKPOINTS / run / "model.safetensors").is_file():
        pytest.fail(f"the shipped demo run {run} is missing; run `python -m lsx demo --only {run}`")
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, "PNG")
    with serve(REPO_CHECKPOINTS, tmp_path) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.goto(f"{server.url}/lookup?run={run}")
            page.get_by_text("class centroid of the training latents").first.wait_for(
                timeout=TIMEOUT_MS
            )
            wait_idle(page)
            with page.expect_file_chooser() as chooser:
                page.get_by_test_id("stFileUploaderDropzone").click()
            chooser.value.set_files(
                files=[{"name": "astronaut.png", "mimeType": "image/png", "buffer": buf.getvalue()}]
            )
            card = page.get_by_text("Nearest class would be digit").first
            card.wait_for(timeout=TIMEOUT_MS)
            wait_idle(page)
            assert page.locator("[data-testid='stException']").count() == 0
            text = page.locator("[data-testid='stMain']").inner_text()
            upload_at = text.index("astronaut.png")
            first_ood = text.lower().index("out of distribution", upload_at)
            assert first_ood < text.index("Nearest class would be digit"), text[upload_at:][:800]
            assert first_ood < text.index("as the model sees it"), text[upload_at:][:800]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "lookup_ood.png"), full_page=True)
        finally:
            browser.close()
        log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
