"""Embedding sets in the app: listed in the run picker, the Latent map's store view (tags,
exports, images when the set has them), Lookup by row, Compare of two sets, and a clear message
on every page that needs a model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lsx.app import set_compare, set_tags, state
from lsx.app.cache import THREADS_ENV
from lsx.app.store_export import export_frame
from lsx.data.lazy import open_source
from lsx.embeddings import import_embeddings, load_embedding_set, store_path
from lsx.export import table_bytes
from lsx.latents.store import STORES_DIR
from lsx.tags import read_tags, save_tag

PAGES = Path(__file__).parents[2] / "pages"
N = 1797


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two sets of the same 1,797 samples (a rotation of each other) with the digits' images, and
    one of other rows."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, 12)).astype(np.float32) + np.repeat(np.eye(12)[:10] * 4, 180, 0)[:N]
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    import_embeddings(tmp_path, "digits-a", z, images="digits")
    import_embeddings(tmp_path, "digits-b", (z @ rotation).astype(np.float32), images="digits")
    import_embeddings(tmp_path, "other", z[:100], labels=np.arange(100) % 3)
    return tmp_path


def page(monkeypatch, root: Path, name: str, chosen: str) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.session_state[state.RUN_DIR] = str(root / chosen)
    return at.run(timeout=60)


def test_the_picker_lists_sets_and_the_latent_map_shows_one(monkeypatch, root):
    at = page(monkeypatch, root, "2_latent_map.py", "digits-a")
    assert not at.exception
    picker = at.sidebar.selectbox(key=state.RUN_PICKER)
    assert picker.format_func(str(root / "digits-a")) == "digits-a (embedding set, 1,797 × 12)"
    assert any("**Embedding set** (no model)" in c.value for c in at.sidebar.caption)
    assert any("is an embedding set" in c.value and "need a decoder" in c.value for c in at.caption)
    assert any("Showing **1,797** of **1,797** points" in m.value for m in at.markdown)
    assert not list(root.glob("digits-a/cache"))  # nothing model-shaped was written
    # a selection shows the digits' images, then is tagged and exported
    points = [{"customdata": i} for i in (5, 900)]
    at.session_state[state.LMS_CHART] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run(timeout=60)
    assert not at.exception
    gallery = str(at.get("image")[0].proto)
    y = open_source("digits").y
    assert f"id 5 · digit {y[5]}" in gallery
    assert f"id 900 · digit {y[900]}" in gallery
    assert "error" not in gallery  # no decoder: no reconstruction error
    at.text_input(key=set_tags.TAG_NAME).set_value("picked")
    at.button[0].click().run(timeout=60)  # the form's submit button
    assert not at.exception
    assert read_tags(root / "digits-a")["picked"].tolist() == [5, 900]


def test_export_of_a_selection_holds_labels_metadata_vectors_and_tags(root):
    emb = load_embedding_set(root / "digits-a")
    save_tag(emb.path, "odd", [1, 3], n_samples=emb.n)
    table = export_frame(str(store_path(emb.path)), "pca", 0, (1, 3, 4))
    data = {fmt: table_bytes(table, fmt) for fmt in ("csv", "npy")}
    frame = pd.read_csv(io.BytesIO(data["csv"]))
    assert frame["id"].tolist() == [1, 3, 4]
    assert frame["label_digit"].tolist() == open_source("digits").y[[1, 3, 4]].tolist()
    assert frame["tag"].tolist() == ["odd", "odd", "(untagged)"]
    z = frame[[f"z_{j}" for j in range(12)]].to_numpy()
    np.testing.assert_allclose(z, np.asarray(emb.z)[[1, 3, 4]], rtol=1e-6)
    assert "recon_error" not in frame
    assert np.load(io.BytesIO(data["npy"])).shape == (3, 12)


def test_lookup_finds_the_exact_nearest_rows(monkeypatch, root):
    at = page(monkeypatch, root, "3_lookup.py", "digits-a")
    assert not at.exception
    assert "needs an encoder" in at.info[0].value
    table = at.dataframe[0].value
    z = np.asarray(load_embedding_set(root / "digits-a").z, dtype=np.float64)
    d = np.linalg.norm(z - z[0], axis=1)
    d[0] = np.inf
    assert table["id"].tolist() == np.argsort(d)[:8].tolist()
    np.testing.assert_allclose(table["distance"], np.sort(d)[:8], rtol=1e-4)
    assert len(at.get("image")) == 1  # the query and its neighbours, from the digits


def test_compare_a_set_with_itself_and_with_its_rotation(monkeypatch, root):
    at = page(monkeypatch, root, "7_compare.py", "digits-a")
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Linear CKA"] == "1.000"
    assert values["Mean kNN Jaccard (k=10)"] == "1.000"
    assert values["Procrustes disparity"] == "0.000"
    at.selectbox(key=set_compare.SET_B).set_value(str(root / "digits-b")).run(timeout=60)
    values = {m.label: m.value for m in at.metric}
    assert values["Linear CKA"] == "1.000"  # a rotation: the same space
    assert values["Mean kNN Jaccard (k=10)"] == "1.000"
    at.selectbox(key=set_compare.SET_B).set_value(str(root / "other")).run(timeout=60)
    assert not at.exception
    assert "has 1,797 rows and other 100" in at.error[0].value


@pytest.mark.parametrize("name", ["4_atoms.py", "5_consistency.py", "8_large_datasets.py"])
def test_pages_that_need_a_model_say_why(monkeypatch, root, name):
    at = page(monkeypatch, root, name, "other")
    assert not at.exception
    assert "is an embedding set" in at.info[0].value
    assert "needs the model's encoder or decoder" in at.info[0].value


def test_a_set_without_images_says_how_to_add_them(monkeypatch, root):
    at = page(monkeypatch, root, "2_latent_map.py", "other")
    points = [{"customdata": 2}]
    at.session_state[state.LMS_CHART] = {"selection": {"points": points, "box": [], "lasso": []}}
    at.run(timeout=60)
    assert not at.exception
    assert any("no images (import it with --images" in w.value for w in at.warning)
    assert (store_path(root / "other") / "manifest.json").is_file()
    assert (root / "other" / STORES_DIR).is_dir()


def test_clusters_outliers_and_drift_on_a_set(monkeypatch, root):
    from sklearn.metrics import adjusted_rand_score

    from lsx.app import store_structure
    from tests.app.test_latent_map_store import chart, customdata
    from tests.waiting import rerun_until_shown, wait_until

    at = page(monkeypatch, root, "2_latent_map.py", "digits-a")
    options = at.sidebar.selectbox(key=state.LMS_COLOR).options
    assert "reconstruction error" not in options  # no decoder
    at.sidebar.selectbox(key=state.LMS_COLOR).set_value("cluster").run(timeout=60)
    wait_until(lambda: rerun_until_shown(at), 120, every=0.2, what="the clusters")
    assert not at.exception
    predicted = np.empty(N, dtype=np.int64)
    for c, trace in enumerate(chart(at)["data"]):
        predicted[customdata(trace)] = c
    planted = np.minimum(np.arange(N) // 180, 9)  # the sets' ten blocks of rows
    assert adjusted_rand_score(planted, predicted) >= 0.9
    table = next(d.value for d in at.dataframe if "purity" in d.value.columns)
    assert table["size"].sum() == N
    at.radio(key=state.LMS_GALLERY).set_value(store_structure.GALLERY_OUTLIERS).run(timeout=60)
    assert not at.exception
    assert any("Showing 18 of 18 selected" in c.value for c in at.caption)
    assert at.get("image")  # the set's images of its top 1 % outliers
    drift = at.selectbox(key=state.LMS_DRIFT)
    assert drift.options == ["(choose a store)", "digits-b (1,797 × 12)", "other (100 × 12)"]


def test_colour_a_set_by_its_tags(monkeypatch, root):
    from tests.app.test_latent_map_store import chart, customdata

    save_tag(root / "digits-a", "odd", [1, 3, 5], n_samples=N)
    at = page(monkeypatch, root, "2_latent_map.py", "digits-a")
    at.sidebar.selectbox(key=state.LMS_COLOR).set_value("tag").run(timeout=60)
    assert not at.exception
    traces = {t["name"]: customdata(t) for t in chart(at)["data"]}
    assert sorted(traces["odd"]) == [1, 3, 5]
    assert len(traces["(untagged)"]) == N - 3
    save_tag(root / "digits-a", "even", [2, 4], n_samples=N)  # a new tag: the map follows
    at.run(timeout=60)
    assert sorted(customdata(t) for t in chart(at)["data"] if t["name"] == "even")[0] == [2, 4]
