"""AppTest of the Latent map page: empty state, happy path (map, sampling, colours, selection,
decode panel), error paths (corrupt weights, run without data, changed data)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.app.widgets import selected_ids, spread
from lsx.checkpoint import WEIGHTS_NAME, save_checkpoint
from lsx.data import load_dataset
from lsx.models import build_model, make_config
from lsx.train import data_info
from lsx.viz.generate import GRID_NAME, MARK_NAME, PATH_NAME
from tests.waiting import rerun_until_shown, wait_until

PAGE = str(Path(__file__).parents[2] / "pages" / "2_latent_map.py")
OVERLAYS = {GRID_NAME, PATH_NAME, MARK_NAME}  # click grid, paths, marks (lsx.viz.generate)
RUN = "tiny-vae-digits"
N_DIGITS = 1797


def make_run(root: Path, name: str = RUN, kind: str = "vae", data: dict | None = None) -> Path:
    """A tiny untrained run on the bundled 8x8 digits (seeded), saved as lsx saves runs."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config(kind, input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    run_dir = root / name
    save_checkpoint(
        build_model(config),
        config,
        run_dir,
        train={"epochs": 1, "batch_size": 64},
        data=data_info(ds) if data is None else data,
    )
    return run_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root)
    (root / "junk-folder").mkdir()
    return root


def page(monkeypatch: pytest.MonkeyPatch, root: Path, run_dir: Path | None = None) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")  # as tests/conftest.py; the app sets it once per process
    at = AppTest.from_file(PAGE, default_timeout=60)
    if run_dir is not None:
        at.session_state[state.RUN_DIR] = str(run_dir)
    return at.run(timeout=60)


def headline(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Showing"))


def decode(value: object) -> list:
    """Plotly's JSON encodes numpy arrays as ``{"dtype": ..., "bdata": base64}``."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def figure(at: AppTest) -> dict:
    (chart,) = at.get("plotly_chart")
    fig = json.loads(chart.proto.spec)
    fig["data"] = [t for t in fig["data"] if t.get("name") not in OVERLAYS]  # points only
    for trace in fig["data"]:
        trace["customdata"] = decode(trace["customdata"])
    return fig


def test_empty_checkpoints_folder_says_how_to_train(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path)
    assert not at.exception
    assert "No trained runs" in at.info[0].value
    assert "python -m lsx train" in at.code[0].value
    assert not at.get("plotly_chart")


def test_no_run_chosen_asks_to_pick_one(monkeypatch, root):
    at = page(monkeypatch, root)
    assert not at.exception
    assert "Pick a checkpoint" in at.info[0].value
    assert at.sidebar.selectbox[0].options == [RUN + " (vae, digits)"]


def test_happy_path_map_and_decode_panel(monkeypatch, root):
    at = page(monkeypatch, root)
    at.sidebar.selectbox(key=state.RUN_PICKER).select(str(root / RUN)).run(timeout=60)
    assert not at.exception
    assert not at.error
    assert at.session_state[state.RUN_DIR] == str(root / RUN)
    assert f"Showing **{N_DIGITS:,}** of **{N_DIGITS:,}** points" in headline(at)
    fig = figure(at)
    assert {trace["type"] for trace in fig["data"]} == {"scattergl"}
    assert len(fig["data"]) == 10  # one trace per digit, so the legend names the classes
    ids = sorted(i for trace in fig["data"] for i in trace["customdata"])
    assert ids == list(range(N_DIGITS))
    manifest = at.json[0].value
    assert '"method": "pca"' in manifest
    assert '"disk_cache"' in manifest
    images = [str(i.proto) for i in at.get("image")]
    assert len(images) == 2  # decode anywhere (lsx.app.generate), then the decode panel
    assert "decoded here" in images[0]
    assert "reconstruction" in images[1]  # decode panel: input | reconstruction | residual
    assert any((root / RUN / "cache").glob("projection-*.json"))  # persisted by lsx.cache


def test_cap_samples_per_class_and_split(monkeypatch, root):
    at = page(monkeypatch, root, root / RUN)
    at.sidebar.number_input(key=state.LM_CAP).set_value(500).run(timeout=60)
    assert not at.exception
    assert f"Showing **500** of **{N_DIGITS:,}** points" in headline(at)
    assert "per-class sample" in headline(at)
    at.sidebar.radio(key=state.LM_SPLIT).set_value("test").run(timeout=60)
    n_test = len(load_dataset("digits").x_test)
    assert f"Showing **{n_test}** of **{n_test}** points · test split" in headline(at)
    ids = [i for trace in figure(at)["data"] for i in trace["customdata"]]
    assert min(ids) == N_DIGITS - n_test  # test ids follow the train ids


@pytest.mark.parametrize(("color", "title"), [("error", "reconstruction MSE"), ("latent", "z[2]")])
def test_continuous_colours_and_3d(monkeypatch, root, color, title):
    at = page(monkeypatch, root, root / RUN)
    at.sidebar.selectbox(key=state.LM_COLOR).set_value(color).run(timeout=60)
    if color == "latent":
        at.sidebar.number_input(key=state.LM_LATENT_DIM).set_value(2).run(timeout=60)
    at.sidebar.toggle(key=state.LM_3D).set_value(True).run(timeout=60)
    assert not at.exception
    assert not at.error
    (trace,) = figure(at)["data"]
    assert trace["type"] == "scatter3d"
    assert trace["marker"]["colorbar"]["title"]["text"] == title
    assert f"coloured by {title}" in headline(at)


def test_selection_shows_gallery_from_customdata_ids(monkeypatch, root):
    at = page(monkeypatch, root, root / RUN)
    points = [{"customdata": i, "point_index": 0, "curve_number": 0} for i in (7, 1500, 7)]
    at.session_state[state.LM_CHART] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run(timeout=60)
    assert not at.exception
    assert any("Showing 2 of 2 selected" in c.value for c in at.caption)
    gallery = next(str(i.proto) for i in at.get("image") if "id 7 · " in str(i.proto))
    assert "id 7 · " in gallery
    assert "id 1500 · " in gallery


def test_selected_ids_reads_customdata_not_indices():
    event = {"selection": {"points": [{"customdata": [4, "x"]}, {"customdata": 9.0}, {"x": 1}]}}
    assert selected_ids(event) == [4, 9]
    assert selected_ids(None) == []
    assert selected_ids({"selection": {"points": []}}) == []
    assert selected_ids(event, shown=[9, 10]) == [9]  # a stale id from another view is dropped


def test_gallery_spreads_over_the_selection_instead_of_the_first_ids():
    assert spread(list(range(100)), 4) == (0, 25, 50, 75)
    assert spread([5, 3, 5], 10) == (3, 5)


def test_corrupt_weights_are_skipped_and_reported(monkeypatch, tmp_path):
    run_dir = make_run(tmp_path, "broken-run")
    (run_dir / WEIGHTS_NAME).write_bytes(b"\x00" * 64)
    at = page(monkeypatch, tmp_path, run_dir)
    assert not at.exception
    assert "corrupt" in at.error[0].value
    assert WEIGHTS_NAME in at.error[0].value
    assert "broken-run" in at.sidebar.expander[0].label or any(
        "broken-run" in m.value for m in at.sidebar.markdown
    )
    assert any("not usable" in w.value for w in at.sidebar.warning)


def test_run_without_dataset_and_changed_data(monkeypatch, tmp_path):
    no_data = make_run(tmp_path, "no-data", data={})
    at = page(monkeypatch, tmp_path, no_data)
    assert not at.exception
    assert "records no dataset" in at.error[0].value
    changed = make_run(tmp_path, "changed", data={**data_info(load_dataset("digits")), "hash": "0"})
    at = page(monkeypatch, tmp_path, changed)
    assert not at.exception
    assert not at.error
    assert "changed since this run was trained" in at.warning[0].value


def test_tsne_is_fitted_in_the_background_then_served_from_disk(monkeypatch, tmp_path):
    run_dir = make_run(tmp_path)
    at = page(monkeypatch, tmp_path, run_dir)
    at.sidebar.selectbox(key=state.LM_METHOD).set_value("tsne")
    at.sidebar.button[0].click().run(timeout=60)  # the form's submit button
    assert not at.exception
    # the request returns at once: PCA is shown while t-SNE is fitted off the request path
    assert "in the background" in at.info[0].value
    assert "PCA 2-D" in headline(at)
    assert figure(at)["layout"]["xaxis"]["title"]["text"] == "PC 1"
    wait_until(
        lambda: rerun_until_shown(at),
        timeout=120,
        every=0.5,
        what="the background t-SNE fit to be shown",
    )
    assert not at.exception
    assert not at.error
    assert not at.info
    assert "TSNE 2-D" in headline(at)
    assert '"method": "tsne"' in at.json[0].value
    st.cache_data.clear()  # a new server process: memory cold, disk warm
    st.cache_resource.clear()
    at = page(monkeypatch, tmp_path, run_dir)
    at.sidebar.selectbox(key=state.LM_METHOD).set_value("tsne")
    at.sidebar.button[0].click().run(timeout=60)
    assert not at.info  # read from disk, no background job
    assert '"disk_cache": "hit"' in at.json[0].value
