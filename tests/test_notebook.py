"""The notebook widget's Python side: explore() from a run, a model + data and a latent store; the
selection round trip; the selection frame; colourings; thumbnails; decode; show_grid; bad input.

Needs the ``[test]`` extra (anywidget); the JavaScript is tested in tests/test_notebook_browser.py
and the example notebook in tests/test_notebook_example.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lsx.analysis import embed
from lsx.checkpoint import load_checkpoint
from lsx.cli import main
from lsx.data import load_dataset
from lsx.errors import CheckpointError, ConfigError, DataShapeError
from lsx.latents import list_stores
from lsx.notebook import explore, show_grid, widget_html

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "checkpoints" / "demo-vae-digits"  # 8x8 digits: 360 test images, fast


@pytest.fixture(scope="module")
def widget():
    return explore(RUN)


@pytest.fixture(scope="module")
def model_and_data():
    model, _ = load_checkpoint(RUN)
    return model, load_dataset("digits")


def test_explore_a_run_maps_its_test_split(widget, model_and_data):
    model, ds = model_and_data
    n = len(ds.x_test)
    assert len(widget.xy) == n * 2 * 4  # float32 (n, 2)
    assert len(widget.values) == n * 4
    assert np.frombuffer(widget.ids, np.int32).tolist() == list(range(n))
    assert widget.color_kind == "category"
    assert widget.categories == list(ds.class_names)
    assert widget.title == "demo-vae-digits"


def test_a_run_name_is_looked_up_in_the_checkpoint_folders():
    w = explore("demo-vae-digits", max_points=50)
    assert w.title == "demo-vae-digits"
    assert len(w.selection_frame()) == 50


def test_selection_round_trip_and_frame(widget, model_and_data):
    model, ds = model_and_data
    widget.selection = [5, 17, 42]
    assert widget.selected_index == [5, 17, 42]  # what the JavaScript receives
    assert widget.selection == [5, 17, 42]
    frame = widget.selection_frame()
    assert frame["id"].tolist() == [5, 17, 42]
    names = ds.class_names
    assert frame["digit"].tolist() == [names[ds.y_test[i]] for i in (5, 17, 42)]
    emb = embed(model, ds.x_test[[5, 17, 42]])
    np.testing.assert_allclose(frame["recon_error"], emb.recon_error, rtol=1e-5, atol=1e-7)
    latent = frame[[f"z{k}" for k in range(emb.z.shape[1])]].to_numpy()
    np.testing.assert_allclose(latent, emb.z, rtol=1e-5, atol=1e-6)
    # what the JavaScript sends back (positions) turns into ids again
    widget.selected_index = [0, 1]
    assert widget.selection == [0, 1]
    widget.selection = []
    assert len(widget.selection_frame()) == len(ds.x_test)  # nothing selected: every point


def test_unknown_ids_are_refused(widget):
    with pytest.raises(ConfigError, match="not on this map"):
        widget.selection = [10**6]


def test_colourings(widget, model_and_data):
    model, ds = model_and_data
    widget.color_by("error")
    assert widget.color_kind == "continuous"
    np.testing.assert_allclose(
        np.frombuffer(widget.values, np.float32), embed(model, ds.x_test).recon_error, rtol=1e-5
    )
    widget.color_by("dim:3")
    assert widget.color_title == "latent dim 3"
    widget.color_by(2)
    assert widget.color_title == "latent dim 2"
    with pytest.raises(ConfigError, match="out of range"):
        widget.color_by(99)
    with pytest.raises(ConfigError, match="Unknown colour 'size'"):
        widget.color_by("size")
    widget.color_by("label")
    assert widget.color_kind == "category"


def test_hover_thumbnails_are_answered(widget, monkeypatch):
    sent = []
    monkeypatch.setattr(widget, "send", sent.append)
    widget._on_message(widget, {"type": "thumbs", "index": [0, 3]}, [])
    assert sorted(sent[0]["images"]) == ["0", "3"]
    assert sent[0]["images"]["3"].startswith("data:image/png;base64,")


def test_decode_the_selection(widget, model_and_data):
    model, ds = model_and_data
    widget.selection = [1, 2]
    images = widget.decode()
    assert images.shape == (2, *ds.input_shape)
    grid = show_grid(images, ncols=2, scale=3)
    assert grid.size == (3 * (2 * 8 + 3 * 2), 3 * (8 + 2 * 2))
    widget.selection = []
    with pytest.raises(ConfigError, match="select points first"):
        widget.decode()


def test_explore_a_model_and_data(model_and_data):
    model, ds = model_and_data
    x = ds.x_test[:40]
    w = explore(model, x, xy=np.c_[np.arange(40), np.zeros(40)])
    assert w.categories == ["all"]  # an array has no labels
    np.testing.assert_array_equal(np.frombuffer(w.xy, np.float32)[::2], np.arange(40))
    w.selection = [39]
    assert w.selection_frame()["id"].tolist() == [39]


def test_explore_a_latent_store(tmp_path):
    run = tmp_path / "demo-vae-digits"
    shutil.copytree(RUN, run, ignore=shutil.ignore_patterns("cache", "stores"))
    assert main(["encode", "--run", str(run), "--split", "test"]) == 0
    store = list_stores(run)[0]
    w = explore(store, color="error")
    assert w.color_kind == "continuous"
    assert w.selection_frame()["id"].tolist() == store.rows.tolist()
    w.selection = store.rows[:2].tolist()
    assert w.decode().shape == (2, 1, 8, 8)  # the store's run is found for decoding
    assert explore(store.path).title.startswith(store.path.name)


def test_bad_inputs_say_what_to_pass(tmp_path, model_and_data):
    model, ds = model_and_data
    with pytest.raises(CheckpointError, match="is not a run folder .* Pass a run folder"):
        explore(tmp_path)
    with pytest.raises(CheckpointError, match="not a folder"):
        explore(tmp_path / "missing")
    with pytest.raises(DataShapeError, match=r"takes images of shape \(n, 1, 8, 8\); data has"):
        explore(model, np.zeros((10, 1, 28, 28), np.float32))
    with pytest.raises(DataShapeError, match="data holds 0 image"):
        explore(model, np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(ConfigError, match="needs data="):
        explore(model)
    with pytest.raises(ConfigError, match="explore\\(\\) got a int"):
        explore(3)
    with pytest.raises(ConfigError, match="split must be"):
        explore(model, ds, split="val")
    with pytest.raises(DataShapeError, match="xy must have shape"):
        explore(model, ds.x_test[:10], xy=np.zeros((10, 3)))


def test_show_grid_refuses_bad_arrays():
    with pytest.raises(DataShapeError, match="non-empty array"):
        show_grid(np.zeros((0, 1, 8, 8)))
    with pytest.raises(DataShapeError, match="C = 1 or 3"):
        show_grid(np.zeros((2, 2, 8, 8)))
    assert show_grid(np.ones((3, 8, 8)), ncols=8, scale=1, pad=0).size == (24, 8)


def test_widget_html_embeds_the_shipped_javascript(widget):
    page = widget_html(widget)
    assert "export default { render }" in page  # the ESM from lsx/notebook/assets, inline
    assert "http://" not in page
    assert "https://" not in page


def test_without_anywidget_explore_says_what_to_install(monkeypatch):
    import sys

    from lsx.errors import LsxError
    from lsx.notebook import widget as widget_module

    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget -> ImportError
    widget_module.widget_class.cache_clear()
    try:
        with pytest.raises(LsxError, match=r'pip install "lsx\[notebook\]"'):
            explore(RUN)
    finally:
        widget_module.widget_class.cache_clear()
