"""Latent map of a store: clusters and outlier scores found without labels (colours, table,
exemplars, gallery of a cluster or of the top 1 % outliers), density contours, latent and error
colours, drift against another store, and a degenerate (all-identical) store."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from streamlit.testing.v1 import AppTest

from lsx.analysis.structure import fit_clusters, outlier_scores, top_share
from lsx.app import state, store_structure
from lsx.data.lazy import open_source
from lsx.latents.store import STORES_DIR
from tests.app.test_latent_map_page import make_run
from tests.app.test_latent_map_store import PAGE, chart, customdata, lines, page, write_store
from tests.waiting import rerun_until_shown, wait_until


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with stores of the digits: 4 planted clusters, a copy shifted with a new cluster,
    and one whose latents are all identical."""
    root = tmp_path_factory.mktemp("checkpoints")
    run_dir = make_run(root, "run")  # a tiny vae on the digits
    src = open_source("digits")
    n, names = len(src), list(src.label_names[src.primary])
    z, blob = make_blobs(n, n_features=6, centers=4, cluster_std=0.6, random_state=2)
    np.save(root / "blob.npy", blob)
    common = dict(spec="digits", source_hash=src.content_hash)
    write_store(run_dir, "digits", z, src.y, names, **common)
    shifted = z.copy()
    shifted[: n // 3] = np.random.default_rng(0).normal(30.0, 0.5, size=(n // 3, 6))
    write_store(run_dir, "shifted", shifted, src.y, names, **common)
    write_store(run_dir, "flat", np.ones((n, 6)), src.y, names, **common)
    dups = z.copy()
    dups[[20, 30]] = dups[10]  # a group of three copies
    dups[41] = dups[40] + 1e-9  # and a near-copy pair
    write_store(run_dir, "dups", dups, src.y, names, **common)
    return root


def settle(at) -> None:
    wait_until(lambda: rerun_until_shown(at), 120, every=0.2, what="the background work")
    assert not at.exception


def colour(at, option: str) -> None:
    at.sidebar.selectbox(key=state.LMS_COLOR).set_value(option).run(timeout=60)
    settle(at)


def test_colour_by_cluster_finds_the_planted_clusters_in_latent_space(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    options = at.sidebar.selectbox(key=state.LMS_COLOR).options
    assert {"cluster (k-means in latent space)", "outlier score", "reconstruction error"} <= set(
        options
    )
    colour(at, "cluster")
    assert not at.error
    fig = chart(at)
    assert [t["name"] for t in fig["data"]] == [f"cluster {c}" for c in range(4)]  # k by silhouette
    predicted = np.empty(1797, dtype=np.int64)
    for c, trace in enumerate(fig["data"]):
        predicted[customdata(trace)] = c
    assert adjusted_rand_score(np.load(root / "blob.npy"), predicted) >= 0.99
    assert "coloured by cluster" in lines(at)
    # the table: one row per cluster, sizes add up, the note says how k was chosen
    table = next(d.value for d in at.dataframe if "purity" in d.value.columns)
    assert len(table) == 4
    assert table["size"].sum() == 1797
    assert any("silhouette" in c.value for c in at.caption)
    store = root / "run" / STORES_DIR / "digits"
    assert list((store / "structure").glob("clusters-*.json"))  # kept in the store's folder


def test_colour_by_outlier_score_and_the_top_outliers_in_the_gallery(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    colour(at, "outlier")
    fig = chart(at)
    (trace,) = fig["data"]  # one trace, a colour bar
    assert trace["marker"]["showscale"]
    assert "outlier score: %{marker.color:.4g}" in trace["hovertemplate"]
    at.radio(key=state.LMS_GALLERY).set_value(store_structure.GALLERY_OUTLIERS).run(timeout=60)
    assert not at.exception
    assert any("Showing 18 of 18 selected" in c.value for c in at.caption)
    z = np.load(root / "run" / STORES_DIR / "digits" / "z.npy")
    top = top_share(outlier_scores(z, seed=0), 0.01)
    gallery = str(at.get("image")[0].proto)
    assert all(f"id {i} ·" in gallery for i in top)
    # the shown points can be downloaded (the files are made when a button is clicked)
    buttons = [b.proto.label for b in at.get("download_button")]
    assert buttons == ["CSV", "PARQUET", "Vectors (.npy)"]
    assert any("18 rows" in c.value and "cluster, outlier score" in c.value for c in at.caption)


def test_a_cluster_in_the_gallery_and_its_exemplars(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    colour(at, "cluster")
    at.radio(key=state.LMS_GALLERY).set_value(store_structure.GALLERY_CLUSTER).run(timeout=60)
    at.selectbox(key=state.LMS_GALLERY_CLUSTER).set_value(2).run(timeout=60)
    assert not at.exception
    z = np.load(root / "run" / STORES_DIR / "digits" / "z.npy")
    members = np.flatnonzero(fit_clusters(z, seed=0).labels == 2)
    assert any(f"of {len(members)} selected" in c.value for c in at.caption)
    at.toggle(key=state.LMS_EXEMPLARS).set_value(True).run(timeout=60)
    assert not at.exception
    assert sum("points" in m.value and "**Cluster" in m.value for m in at.markdown) == 4
    assert len(at.get("image")) == 1 + 4  # the gallery, then one row of exemplars per cluster


def test_latent_dimension_error_and_density_contours(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    colour(at, "latent")
    at.sidebar.number_input(key=state.LMS_LATENT_DIM).set_value(5).run(timeout=60)
    assert "coloured by latent 5" in lines(at)
    colour(at, "error")
    assert "coloured by reconstruction error" in lines(at)
    colour(at, "error_pct")
    assert "coloured by reconstruction error percentile" in lines(at)
    (trace,) = chart(at)["data"]
    values = trace["marker"]["color"]
    if isinstance(values, dict):  # plotly's binary encoding
        values = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    assert 0 < min(values)
    assert max(values) == 100
    colour(at, "error")
    at.sidebar.toggle(key=state.LMS_CONTOURS).set_value(True).run(timeout=60)
    assert not at.exception
    types = [t["type"] for t in chart(at)["data"]]
    assert types == ["scattergl", "contour"]


def test_drift_against_a_shifted_store_and_against_itself(monkeypatch, root):
    at = page(monkeypatch, root, "digits")
    drift = at.selectbox(key=state.LMS_DRIFT)
    shifted = str(root / "run" / STORES_DIR / "shifted")
    flat = str(root / "run" / STORES_DIR / "flat")
    # the run's other stores of the same dimension
    assert drift.options == [
        "(choose a store)",
        "dups (1,797 × 6)",
        "flat (1,797 × 6)",
        "shifted (1,797 × 6)",
    ]
    assert flat != shifted
    drift.set_value(shifted).run(timeout=60)
    settle(at)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["p-value"]) < 0.01
    novel = float(metrics["Novel new points"].rstrip("%")) / 100
    assert novel == pytest.approx(1 / 3, abs=0.03)  # the moved third, and hardly anything else
    assert float(metrics["In clusters this set lacks"].rstrip("%")) / 100 == pytest.approx(
        1 / 3, abs=0.05
    )
    assert any("differ at α = 0.05" in c.value for c in at.caption)
    (novelty,) = [c for c in at.get("plotly_chart") if "lms_drift_chart" in str(c.proto.id)]
    assert novelty is not None


def test_all_identical_latents_get_a_clear_message_not_an_exception(monkeypatch, root):
    at = page(monkeypatch, root, "flat")
    colour(at, "cluster")
    (error,) = at.error  # the map cannot be drawn; the clusters (one) say the same in lsx
    assert "identical" in error.value
    assert "collapsed" in error.value
    assert not at.exception
    z = np.load(root / "run" / STORES_DIR / "flat" / "z.npy")
    assert "collapsed" in fit_clusters(z, seed=0).note


def test_tag_a_cluster_of_a_runs_store_then_colour_and_export_by_tag(monkeypatch, root):
    from lsx.app import set_tags
    from lsx.app.store_export import export_frame
    from lsx.tags import read_tags

    at = page(monkeypatch, root, "digits")
    colour(at, "cluster")
    at.radio(key=state.LMS_GALLERY).set_value(store_structure.GALLERY_CLUSTER).run(timeout=60)
    at.selectbox(key=state.LMS_GALLERY_CLUSTER).set_value(1).run(timeout=60)
    at.text_input(key=set_tags.TAG_NAME).set_value("blob one")
    next(b for b in at.button if "Tag the selection" in b.label).click().run(timeout=60)
    assert not at.exception
    store_dir = root / "run" / STORES_DIR / "digits"
    z = np.load(store_dir / "z.npy")
    members = np.flatnonzero(fit_clusters(z, seed=0).labels == 1)
    assert read_tags(store_dir)["blob one"].tolist() == members.tolist()  # in the store's folder
    colour(at, "tag")
    traces = {t["name"]: sorted(customdata(t)) for t in chart(at)["data"]}
    assert traces["blob one"] == members.tolist()
    table = export_frame(str(store_dir), "pca", 0, members[:3].tolist())
    assert table["tag"].tolist() == ["blob one"] * 3


def test_near_duplicates_are_grouped_with_their_images(monkeypatch, root):
    at = page(monkeypatch, root, "dups")
    colour(at, "cluster")
    assert at.number_input(key=state.LMS_DUP_THRESHOLD).value > 0  # 5 % of a typical distance
    at.number_input(key=state.LMS_DUP_THRESHOLD).set_value(1e-6).run(timeout=60)
    at.toggle(key=state.LMS_DUP_FIND).set_value(True).run(timeout=60)
    settle(at)
    assert "**2 groups** holding **5 points**." in lines(at)
    assert "**Group 0** · 3 points" in lines(at)
    gallery = str(at.get("image")[-2].proto)  # group 0: the three copies
    assert all(f"id {i} ·" in gallery for i in (10, 20, 30))


def test_a_cluster_number_left_from_another_store_falls_back_to_the_first(monkeypatch, root):
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[state.RUN_DIR] = str(root / "run")
    at.session_state[state.LM_SOURCE] = str(root / "run" / STORES_DIR / "digits")
    at.session_state[state.LMS_COLOR] = "cluster"
    at.session_state[state.LMS_GALLERY] = store_structure.GALLERY_CLUSTER
    at.session_state[state.LMS_GALLERY_CLUSTER] = 9  # this store has 4 clusters
    at.run(timeout=60)
    settle(at)
    assert at.selectbox(key=state.LMS_GALLERY_CLUSTER).value == 0
