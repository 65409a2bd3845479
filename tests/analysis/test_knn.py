"""lsx.analysis.knn against brute force (scipy cdist): exact below the threshold, HNSW above."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs

from lsx.analysis import knn as knn_mod
from lsx.analysis.knn import EXACT_MAX, build_index, choose_method, knn
from lsx.errors import ConfigError, DataShapeError


def _brute(db: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = cdist(q.astype(np.float64), db.astype(np.float64))
    ids = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(d, ids, axis=1)


@pytest.mark.parametrize("faiss_on", [True, False])
def test_exact_search_equals_cdist(faiss_on, monkeypatch):
    monkeypatch.setattr(knn_mod, "faiss_available", lambda: faiss_on)
    rng = np.random.default_rng(0)
    db, q = rng.normal(size=(3000, 12)), rng.normal(size=(300, 12))
    index = build_index(db)
    assert (index.method, index.backend) == ("exact", "faiss" if faiss_on else "numpy")
    ids, dist = index.query(q, 7)
    ref_ids, ref_dist = _brute(db, q, 7)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-6, atol=1e-6)


def test_distance_of_a_database_row_to_itself_is_zero():
    # the search's float32 |q|^2 - 2q.d + |d|^2 expansion would give ~1e-3 here
    db = np.random.default_rng(1).normal(10.0, 1.0, size=(500, 32)).astype(np.float32)
    ids, dist = build_index(db).query(db[:20], 1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(20))
    assert dist.max() == 0.0


def test_hnsw_recall_on_clustered_latents():
    z, _ = make_blobs(n_samples=20_000, n_features=16, centers=30, random_state=0)
    q = z[::97] + 0.05
    index = build_index(z, method="hnsw")
    assert index.method == "hnsw"
    assert index.info["m"] > 0
    ids, dist = index.query(q, 10)
    ref_ids, _ = _brute(z, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref_ids, strict=True)])
    assert recall >= 0.95, recall
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first


def test_auto_switches_at_the_threshold():
    assert choose_method(EXACT_MAX) == "exact"
    assert choose_method(EXACT_MAX + 1) == "hnsw"
    assert choose_method(10, "hnsw") == "hnsw"
    assert choose_method(1_000_000, n_queries=16) == "exact"  # a few lookups: no index build
    assert choose_method(1_000_000, n_queries=10_000) == "hnsw"
    assert build_index(np.zeros((30, 2)), exact_max=10).method == "hnsw"
    with pytest.raises(ConfigError, match="one of"):
        choose_method(10, "annoy")


def test_neighbours_of_rows_exclude_self_even_with_duplicates():
    z = np.array([[0.0, 0], [0, 0], [1, 0], [3, 0], [3, 0.1]])
    nb = build_index(z).neighbours_of_rows(2)
    assert nb.shape == (5, 2)
    assert not (nb == np.arange(5)[:, None]).any()
    assert nb[0, 0] == 1
    assert nb[1, 0] == 0
    assert set(nb[3]) == {4, 2}
    with pytest.raises(ConfigError, match="n_rows - 1"):
        build_index(z).neighbours_of_rows(5)


def test_bad_input_says_what_to_do():
    index = build_index(np.zeros((10, 4)))
    with pytest.raises(DataShapeError, match="same checkpoint"):
        index.query(np.zeros((2, 3)), 1)
    with pytest.raises(DataShapeError, match="NaN"):
        build_index(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataShapeError, match="empty"):
        build_index(np.zeros((0, 4)))
    with pytest.raises(ConfigError, match="k"):
        index.query(np.zeros((1, 4)), 0)
    ids, _, info = knn(np.eye(3), np.eye(3)[:1], k=10)  # k capped at the database size
    assert ids.shape == (1, 3)
    assert info["n_db"] == 3


def test_hnsw_without_faiss_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(knn_mod, "faiss_available", lambda: False)
    with pytest.raises(ConfigError, match="faiss-cpu"):
        build_index(np.zeros((5, 2)), method="hnsw")
