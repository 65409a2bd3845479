"""Latent stores in a real browser: the Latent map of a 120,000-point store (density raster,
"Showing 5,000 of 120,000", the projection tier, a box selection -> gallery read lazily from the
npy source), and the Large datasets page encoding an ``npy:`` source into a store until "done".
One server for both tests; no exception box, no traceback in the server log.
Saves ``tests/artifacts/latent_map_store.png`` (git-ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lsx.checkpoint import load_checkpoint, weights_sha256
from lsx.data.lazy import open_source
from lsx.latents.store import open_store, store_dir_for
from lsx.latents.writer import encode_to_store
from tests.app.test_latent_map_page import make_run
from tests.browser.conftest import CHROMIUM_ARGS, Server, serve
from tests.browser.test_browser import ARTIFACTS, POINTS_JS, wait_idle

RUN = "tiny-store-run"
N_BIG = 120_000  # above SCATTER_MAX (50,000): the density tier
N_SMALL = 2_000  # encoded from the Large datasets page
WAIT_MS = 60_000
PLOT = ".js-plotly-plot"


def _npy(folder: Path, name: str, n: int, seed: int) -> Path:
    """Random 8x8 uint8 images (the tiny run's input shape) and 10 labels, as .npy files."""
    rng = np.random.default_rng(seed)
    path = folder / f"{name}.npy"
    np.save(path, rng.integers(0, 256, (n, 8, 8), dtype=np.uint8))
    np.save(folder / f"{name}.labels.npy", rng.integers(0, 10, n).astype(np.int64))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(checkpoints root, the small npy to encode from the app, the big store folder)."""
    root = tmp_path_factory.mktemp("checkpoints")
    data = tmp_path_factory.mktemp("data")
    run_dir = make_run(root, RUN)
    big, small = _npy(data, "big", N_BIG, 0), _npy(data, "small", N_SMALL, 1)
    torch.set_num_threads(1)
    model, _ = load_checkpoint(run_dir)
    source = open_source(f"npy:{big}")
    store = encode_to_store(
        model,
        source,
        store_dir_for(run_dir, source.spec, "all"),
        checkpoint_sha=weights_sha256(run_dir),
        batch_size=8192,
    )  # a few seconds: 120k tiny images through a tiny model
    assert store.n == N_BIG
    return root, small, store.path


@pytest.fixture(scope="module")
def server(chromium: str, setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = setup[1].parent  # the app may read paths typed into it from its data roots only
    with serve(setup[0], tmp_path_factory.mktemp("server"), data_roots=data) as srv:
        yield srv


@pytest.fixture
def page(chromium: str, server: Server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1500, "height": 1300})
        finally:
            browser.close()


def _no_errors(page, server: Server) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.browser
def _open_big_store(page, server) -> None:
    """The Latent map of the run's dataset, then "Map of" the 120,000-point store."""
    page.goto(f"{server.url}/latent_map?run={RUN}")
    page.wait_for_selector(PLOT, timeout=WAIT_MS)  # the run's dataset first
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Map of").click()
    page.get_by_role("option", name=re.compile(r"\(120,000 × 3\)")).click()


def test_store_map_density_tier_and_box_selection(page, server, setup):
    _open_big_store(page, server)
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Plotly", exact=True).click()  # above 50,000 the default is WebGL

    page.get_by_text(
        re.compile(r"Showing 5,000 of 120,000 points as selectable markers .*density raster")
    ).wait_for(timeout=WAIT_MS)
    page.wait_for_function(f"({POINTS_JS})() === 5000", timeout=WAIT_MS)
    wait_idle(page)
    assert page.get_by_text(re.compile(r"Projection: exact PCA on 120,000 points")).count() == 1
    # the raster: one layout image (a PNG data URI) drawn as an SVG <image> below the markers
    sources = page.evaluate(
        f"() => document.querySelector('{PLOT}').layout.images.map(i => i.source.slice(0, 22))"
    )
    assert sources == ["data:image/png;base64,"]
    href = page.locator(f"{PLOT} svg image").first.get_attribute("href")
    assert href.startswith("data:image/png;base64,")
    assert page.evaluate(f"() => document.querySelector('{PLOT}')._fullData.length") == 10

    # box-select the middle of the map: the sample ids come back -> images read from the npy
    box = page.locator(f"{PLOT} .nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 0.25 * box["width"], y0 + 0.25 * box["height"], steps=10)
    page.mouse.move(x0 + 0.5 * box["width"], y0 + 0.5 * box["height"], steps=10)
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"Showing \d+ of \d+ selected"))
    caption.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    shown, selected = map(int, re.findall(r"\d+", caption.inner_text())[:2])
    assert 1 <= shown <= 32
    assert shown <= selected <= 5000
    assert page.locator("[data-testid='stImageContainer'] img").count() == shown  # the gallery
    captions = page.get_by_test_id("stImageCaption").all_inner_texts()
    assert len(captions) == shown
    assert all(re.fullmatch(r"id \d+ · class \d · error \S+", c) for c in captions), captions
    assert page.get_by_text("Images not shown").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(5, 5)
    page.screenshot(path=str(ARTIFACTS / "latent_map_store.png"))
    _no_errors(page, server)


MAP = ".lsx-pointmap"


def _pick_big_store(page, server) -> None:
    _open_big_store(page, server)
    page.wait_for_selector(f"{MAP}[data-ready='1']", timeout=WAIT_MS)
    wait_idle(page)


def _point_at(page, i: int) -> tuple[float, float]:
    return tuple(page.locator(MAP).evaluate(f"el => el.pointAt({i})"))


@pytest.mark.browser
def test_webgl_map_draws_every_point_hovers_and_lassos_with_the_right_ids(page, server, setup):
    from lsx.latents.projections import cached_store_projection
    from lsx.viz.pointmap import ids_in_polygon, quantised

    _pick_big_store(page, server)
    assert page.get_by_text(re.compile(r"Showing all 120,000 points \(WebGL")).count() == 1
    renderer = page.locator(MAP).get_attribute("data-renderer")
    assert renderer in ("webgl", "canvas2d")  # canvas2d: the browser has no WebGL at all
    assert page.locator(MAP).get_by_text(f"120,000 points · {renderer}").count() == 1
    coords, _, hit = cached_store_projection(open_store(setup[2]), "pca", 2, 0, compute=False)
    assert hit
    q = quantised(coords)
    # hover: the right-most point (alone at its pixel) shows its id and class in the tooltip
    far = int(np.argmax(q[:, 0]))
    page.mouse.move(*_point_at(page, far))
    tip = page.locator(".lsx-pointmap-tip")
    tip.wait_for(state="visible", timeout=WAIT_MS)
    assert tip.inner_text().startswith(f"id {far}\n")
    # the page-pixel <-> data mapping, from two points the map reports
    a, b = int(np.argmin(q[:, 0])), far
    (pa, pb) = _point_at(page, a), _point_at(page, b)
    sx = (q[b, 0] - q[a, 0]) / (pb[0] - pa[0])
    sy = (q[b, 1] - q[a, 1]) / (pb[1] - pa[1])
    to_data = lambda x, y: (q[a, 0] + (x - pa[0]) * sx, q[a, 1] + (y - pa[1]) * sy)  # noqa: E731
    # lasso a triangle around the middle of the cloud
    page.get_by_role("button", name="Lasso").click()
    box = page.locator(f"{MAP} canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    tri = [(cx - 120, cy - 80), (cx + 120, cy - 60), (cx, cy + 110)]
    page.mouse.move(*tri[0])
    page.mouse.down()
    for x, y in (*tri[1:], tri[0]):
        page.mouse.move(x, y, steps=15)
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"Showing \d+ of \d+ selected"))
    caption.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    shown, selected = map(int, re.findall(r"\d+", caption.inner_text())[:2])
    expected = ids_in_polygon(q, [to_data(x, y) for x, y in tri])
    assert selected > 1000  # a real region of the 120,000 points
    assert abs(selected - len(expected)) <= 0.01 * len(expected)  # the path has more vertices
    captions = page.get_by_test_id("stImageCaption").all_inner_texts()
    assert len(captions) == shown == 32
    ids = [int(re.match(r"id (\d+)", c).group(1)) for c in captions]
    assert len(set(ids) & set(expected.tolist())) >= 30  # the ids came back right
    # the whole selection downloads as CSV (made when the button is clicked)
    with page.expect_download(timeout=WAIT_MS) as download:
        page.get_by_role("button", name="CSV").click()
    table = pd.read_csv(download.value.path())
    assert len(table) == selected
    assert set(ids) <= set(table["id"])
    assert {"row", "label_class", "z_0", "map_1", "recon_error"} <= set(table.columns)
    # zoom in on the centre: the map re-renders at full resolution
    page.get_by_role("button", name="Pan / zoom").click()
    page.mouse.move(cx, cy)
    for _ in range(5):
        page.mouse.wheel(0, -200)
    status = page.locator(MAP).get_by_text(re.compile(r"zoom ([2-9]|\d{2,})\.\dx"))
    status.wait_for(timeout=WAIT_MS)  # 5 wheel steps: about 2.1x
    assert float(page.locator(MAP).get_attribute("data-frame-ms")) >= 0  # re-rendered, timed
    # density contours over every point, redrawn with the points
    assert page.locator(MAP).get_attribute("data-contours") == "0"
    page.get_by_test_id("stSidebar").get_by_text("Density contours").click()
    page.locator(f"{MAP}[data-ready='1']:not([data-contours='0'])").wait_for(timeout=WAIT_MS)
    assert int(page.locator(MAP).get_attribute("data-contours")) >= 6  # a line per level at least
    assert page.locator(MAP).get_by_text(re.compile(r"zoom 2\.\dx")).count() == 1  # zoom kept
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "latent_map_webgl.png"))
    _no_errors(page, server)


@pytest.mark.browser
def test_large_datasets_page_encodes_an_npy_source(page, server, setup):
    root, small, _ = setup
    page.goto(f"{server.url}/large_datasets?run={RUN}")
    page.get_by_role("button", name="Encode into a store").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    field = page.get_by_role("textbox", name="Dataset", exact=True)
    assert field.input_value() == "digits"  # the run's own dataset by default
    field.fill(f"npy:{small}")
    page.get_by_role("button", name="Encode into a store").click()
    page.get_by_text("in the background").wait_for(timeout=WAIT_MS)
    # the panel refreshes itself every second; the encode is a subprocess (torch import: seconds)
    page.get_by_text(re.compile(rf"done · {N_SMALL:,}/{N_SMALL:,} rows")).wait_for(timeout=WAIT_MS)
    store = open_store(store_dir_for(root / RUN, f"npy:{small}", "all"))
    assert store.n == N_SMALL
    assert store.manifest["complete"] is True
    _no_errors(page, server)
