"""Latent map of a latent store: source choice, scatter tier (<= 50k points) with an image gallery,
density tier (> 50k) with "Showing N of M", a lean chart (hover templates over binary ids, no
per-point strings), tiered projections in the background, stale stores, and the projection cache
under <store>/projections/."""

from __future__ import annotations

import base64
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from streamlit.testing.v1 import AppTest

import lsx.latents.projections
from lsx.analysis import tiers
from lsx.app import state, store_map
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import save_checkpoint, weights_sha256
from lsx.data import load_dataset
from lsx.data.lazy import open_source
from lsx.latents.store import FORMAT_VERSION, MANIFEST_NAME, STORES_DIR, open_store
from lsx.models import build_model, make_config
from lsx.train import data_info
from tests.waiting import rerun_until_shown, wait_until

PAGE = str(Path(__file__).parents[2] / "pages" / "2_latent_map.py")
N_BIG = 120_000


def write_store(run_dir: Path, name: str, z, y, names, *, spec: str, source_hash: str, **extra):
    """A complete store folder in the contract's file format (lsx/latents/)."""
    d = run_dir / STORES_DIR / name
    d.mkdir(parents=True)
    n, dim = z.shape
    np.save(d / "z.npy", z.astype(np.float32))
    np.save(d / "recon_error.npy", np.linspace(0, 1, n, dtype=np.float32))
    np.save(d / "rows.npy", np.arange(n, dtype=np.int64))
    np.save(d / "labels-class.npy", y.astype(np.int64))
    manifest = {
        "format_version": FORMAT_VERSION,
        "checkpoint_sha": weights_sha256(run_dir),
        "model_kind": "vae",
        "latent_shape": [dim],
        "source": {"spec": spec, "hash": source_hash, "n": n, "label_names": {"class": names}},
        "split": "all",
        "n": n,
        "dim": dim,
        "rows_done": n,
        "complete": True,
        **extra,
    }
    (d / MANIFEST_NAME).write_text(json.dumps(manifest))
    return d


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with three stores: 120k synthetic latents, the digits themselves, a stale one."""
    root = tmp_path_factory.mktemp("checkpoints")
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("vae", input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    run_dir = root / "run"
    save_checkpoint(build_model(config), config, run_dir, train={"epochs": 1}, data=data_info(ds))
    z, y = make_blobs(N_BIG, n_features=16, centers=5, random_state=0)
    names = [f"c{i}" for i in range(5)]
    write_store(run_dir, "big", z, y, names, spec="npy:/nowhere/images.npy", source_hash="h")
    src = open_source("digits")
    z_small, _ = make_blobs(len(src), n_features=3, centers=10, random_state=1)
    write_store(
        run_dir, "digits", z_small, src.y, list(src.label_names[src.primary]),
        spec="digits", source_hash=src.content_hash,
    )  # fmt: skip
    stale = write_store(run_dir, "stale", z_small, src.y, names, spec="digits", source_hash="x")
    manifest = json.loads((stale / MANIFEST_NAME).read_text())
    (stale / MANIFEST_NAME).write_text(json.dumps({**manifest, "checkpoint_sha": "0" * 16}))
    return root


def page(monkeypatch, root: Path, store: str | None = None) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[state.RUN_DIR] = str(root / "run")
    at.run(timeout=60)
    if store is not None:
        path = str(root / "run" / STORES_DIR / store)
        at.sidebar.selectbox(key=state.LM_SOURCE).set_value(path).run(timeout=60)
    return at


def lines(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def customdata(trace: dict) -> list[int]:
    """Plotly's JSON encodes numpy arrays as ``{"dtype": ..., "bdata": base64}``."""
    data = trace["customdata"]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def chart(at: AppTest) -> dict:
    (element,) = at.get("plotly_chart")
    return json.loads(element.proto.spec)


def test_dataset_stays_the_default_and_stores_are_offered(monkeypatch, root):
    at = page(monkeypatch, root)
    assert not at.exception
    select = at.sidebar.selectbox(key=state.LM_SOURCE)
    assert select.value == ""  # today's behaviour: the run's dataset
    assert "the run's dataset" in select.options
    assert any(o.startswith("big (120,000 × 16)") for o in select.options)
    assert any("stale (not usable)" in o for o in select.options)
    assert "Showing **1,797** of **1,797** points" in lines(at)


def test_big_store_shows_the_density_tier(monkeypatch, root):
    at = page(monkeypatch, root, "big")
    assert not at.exception
    assert at.sidebar.radio(key=state.LMS_RENDERER).value == "webgl"  # the default above 50k
    at.sidebar.radio(key=state.LMS_RENDERER).set_value("plotly").run(timeout=60)
    assert not at.error
    text = lines(at)
    assert "exact PCA on 120,000 points" in text
    assert f"Showing **5,000** of **{N_BIG:,}** points as selectable markers" in text
    fig = chart(at)
    assert {t["type"] for t in fig["data"]} == {"scattergl"}
    assert len(fig["data"]) == 5  # one trace per class of the sample
    assert fig["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    assert len(json.dumps(fig)) < 300_000  # 5,000 markers + a PNG, whatever the points
    for trace in fig["data"]:
        assert "text" not in trace  # no hover string per point
        assert (
            trace["hovertemplate"] == f"id %{{customdata}}<br>class: {trace['name']}<extra></extra>"
        )
    manifest = json.loads(at.json[0].value)
    assert manifest["info"]["tier"] == "exact"
    assert list((root / "run" / STORES_DIR / "big" / "projections").glob("pca-*.json"))
    # a selection of a store whose source is gone: ids and labels, and why there are no images
    shown = customdata(fig["data"][0])[:2]  # ids of sampled points (others are not on the map)
    points = [{"customdata": i} for i in shown]
    at.session_state[state.LMS_CHART] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run(timeout=60)
    assert not at.exception
    assert any("Images not shown" in w.value for w in at.warning)
    assert "cannot be read" in at.warning[0].value
    (table,) = at.dataframe
    assert table.value["selected"].str.startswith(f"id {shown[0]} · class c").any()


def test_small_store_shows_every_point_and_a_gallery(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    assert not at.exception
    assert "Showing **1,797** of **1,797** points (all, selectable)" in lines(at)
    fig = chart(at)
    assert "images" not in fig["layout"]  # no raster below 100,000 points
    assert len(fig["data"]) == 10
    points = [{"customdata": i} for i in (3, 1200)]
    at.session_state[state.LMS_CHART] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run(timeout=60)
    assert not at.exception
    assert any("Showing 2 of 2 selected" in c.value for c in at.caption)
    gallery = str(at.get("image")[0].proto)
    y = open_source("digits").y
    assert f"id 3 · class {y[3]}" in gallery
    assert f"id 1200 · class {y[1200]}" in gallery
    assert f"id 3 · class {y[3]} · error " in gallery  # the error moved from hover to captions
    path = str(root / "run" / STORES_DIR / "digits")
    x, _, why = store_map.store_images(path, store_map.store_version(path), (3, 1200))
    assert why is None
    np.testing.assert_array_equal(x, open_source("digits").read(np.array([3, 1200])))


def test_stale_store_is_a_message_not_an_exception(monkeypatch, root):
    at = page(monkeypatch, root, "stale")
    assert not at.exception
    assert "cannot be shown" in at.warning[0].value
    assert "stale" in at.warning[0].value
    assert not at.get("plotly_chart")


def test_tiered_projection_is_fitted_in_the_background(monkeypatch, root):
    # the real tiered path with a small sample, so the test stays fast (UMAP at 50k: minutes)
    fast = partial(tiers.project_tiered, params={"max_iter": 250})
    monkeypatch.setattr(  # where the store's projection cache calls it
        lsx.latents.projections,
        "project_tiered",
        lambda *a, **kw: fast(*a, **{**kw, "sample_size": 400}),
    )
    at = page(monkeypatch, root, "big")
    at.sidebar.selectbox(key=state.LMS_METHOD).set_value("tsne")
    at.sidebar.button[0].click().run(timeout=60)
    assert not at.exception
    assert "in the background" in at.info[0].value
    assert "exact PCA" in lines(at)  # PCA meanwhile
    wait_until(
        lambda: rerun_until_shown(at),
        timeout=120,
        every=0.5,
        what="the background tiered t-SNE fit to be shown",
    )
    assert not at.info
    text = lines(at)
    assert "t-SNE fitted on a stratified sample of 400 points; the other 119,600 placed" in text
    info = json.loads(at.json[0].value)["info"]
    assert info["placement"]["k"] == 15
    assert info["sample"]["rule"] == "stratified by label, seed 0"


def test_store_projection_cache_hits_and_recomputes_for_another_store(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.safetensors").write_bytes(b"weights")
    z, y = make_blobs(300, n_features=4, centers=3, random_state=0)
    d = write_store(run_dir, "s", z, y, ["a", "b", "c"], spec="x", source_hash="h")
    store = open_store(d)
    coords, manifest, hit = store_map.cached_store_projection(store, "pca")
    assert not hit
    assert manifest["cached"] is True
    np.testing.assert_allclose(coords, tiers.project_tiered(z, "pca")[0], atol=1e-5)
    again, _, hit = store_map.cached_store_projection(store, "pca")
    assert hit
    np.testing.assert_array_equal(again, coords)
    # the same folder re-encoded by other weights: the old map is not served
    m = json.loads((d / MANIFEST_NAME).read_text())
    (d / MANIFEST_NAME).write_text(json.dumps({**m, "checkpoint_sha": "f" * 16}))
    _, manifest, hit = store_map.cached_store_projection(open_store(d), "pca")
    assert not hit
    assert "made from another store (checkpoint_sha" in manifest["recomputed_because"]
    # a truncated array file is recomputed, not served; then it is served again
    for path in (d / "projections").glob("pca-*.npy"):
        path.write_bytes(path.read_bytes()[:100])
    _, _, hit = store_map.cached_store_projection(open_store(d), "pca", compute=False)
    assert not hit
    fresh, _, hit = store_map.cached_store_projection(open_store(d), "pca")
    assert not hit
    np.testing.assert_array_equal(fresh, coords)
    assert store_map.cached_store_projection(open_store(d), "pca")[2]


def decode(values) -> np.ndarray:
    """A Plotly JSON array: ``{"dtype", "bdata"}`` (base64 binary) or a list."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def test_scatter_tier_ends_at_scatter_max_with_a_lean_chart(tmp_path):
    """SCATTER_MAX points: every point a marker, ~16 bytes each; one more: the density tier."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.safetensors").write_bytes(b"weights")
    names = ["zero", "one", "two <b>"]
    sizes = {"at": store_map.SCATTER_MAX, "above": store_map.SCATTER_MAX + 1}
    figs, frames = {}, {}
    for name, n in sizes.items():
        rng = np.random.default_rng(0)
        z, y = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
        store = open_store(write_store(run_dir, name, z, y, names, spec="x", source_hash="h"))
        coords, manifest, _ = store_map.cached_store_projection(store, "pca")
        frames[name] = store_map.make_frame(store, coords, manifest, "class")
        figs[name] = json.loads(store_map.store_figure(frames[name]).to_json())
        if name == "at":
            at_coords, at_y = coords, y
    assert store_map.SCATTER_MAX == 50_000  # docs/architecture.md
    fig = figs["at"]
    assert "images" not in fig["layout"]
    ids = np.concatenate([decode(t["customdata"]) for t in fig["data"]])
    np.testing.assert_array_equal(np.sort(ids), np.arange(store_map.SCATTER_MAX))  # every point
    for trace in fig["data"]:
        idx = decode(trace["customdata"])
        assert decode(trace["x"]).dtype == np.float32
        np.testing.assert_array_equal(decode(trace["x"]), at_coords[idx, 0])
        np.testing.assert_array_equal(decode(trace["y"]), at_coords[idx, 1])
        assert {names[c] for c in at_y[idx]} == {trace["name"]}  # the class is the trace
        assert "text" not in trace  # no hover string per point
        assert "hovertext" not in trace
    template = fig["data"][2]["hovertemplate"]
    assert template == "id %{customdata}<br>class: two &lt;b&gt;<extra></extra>"  # escaped
    size = len(json.dumps(fig))
    assert size < 20 * store_map.SCATTER_MAX  # x, y float32 + int32 id, base64: ~16 bytes/point
    assert frames["at"].grid is None
    assert frames["at"].n_shown == store_map.SCATTER_MAX
    above = frames["above"]
    assert above.grid is not None
    assert above.n_shown == store_map.DENSITY_SAMPLE
    assert above.grid.n_points == store_map.SCATTER_MAX + 1
    assert figs["above"]["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    assert len(json.dumps(figs["above"])) < size / 3


def test_webgl_map_sends_every_point_and_a_lasso_selects_over_all_of_them(monkeypatch, root):
    from lsx.viz.pointmap import decode_points, ids_in_polygon, quantised

    at = page(monkeypatch, root, "big")
    assert not at.exception
    assert f"Showing **all {N_BIG:,}** points (WebGL" in lines(at)
    assert not at.get("plotly_chart")
    path = str(root / "run" / STORES_DIR / "big")
    version = store_map.store_version(path)
    payload, q, _ = store_map.webgl_data(path, version, "pca", 0, "label:class", None)
    header, xy, colour, _ = decode_points(payload)
    assert header["n"] == N_BIG
    assert len(payload) < 6 * N_BIG + 10_000  # 5 bytes per point and a header
    assert header["categories"] == [f"c{i}" for i in range(5)]
    store = open_store(Path(path))
    assert np.array_equal(colour, np.asarray(store.labels["class"]))
    coords, _, _ = lsx.latents.projections.cached_store_projection(store, "pca", 2, 0)
    np.testing.assert_allclose(xy, quantised(coords))
    # a lasso anywhere on the map selects over all 120,000 points, not over a sample
    x0, x1, y0, y1 = header["extent"]
    box = [[x0, y0], [(x0 + x1) / 2, y0], [(x0 + x1) / 2, y1], [x0, y1]]  # the left half
    expected = ids_in_polygon(q, box)
    assert 1_000 < len(expected) < N_BIG
    view = f"{path}|pca|0"
    at.session_state[state.LMS_POINTMAP] = {
        "selection": {"view": view, "kind": "box", "polygon": box, "stamp": 1}
    }
    at.run(timeout=60)
    assert not at.exception
    assert any(f"Showing 32 of {len(expected)} selected" in c.value for c in at.caption)
    # a selection made on another view (another projection) is not applied to this one
    at.session_state[state.LMS_POINTMAP] = {
        "selection": {"view": f"{path}|umap|0", "kind": "box", "polygon": box, "stamp": 2}
    }
    at.run(timeout=60)
    assert not any("selected" in c.value and "Showing" in c.value for c in at.caption)
