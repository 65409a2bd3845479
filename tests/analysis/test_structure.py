"""Clusters, outlier scores, near-duplicates and drift on planted structure.

Oracles: planted blobs (adjusted Rand index from scikit-learn), planted outliers (ROC AUC from
scikit-learn), brute-force kNN distances (scipy's cdist), and the size and power of the drift
test over repeated null and shifted splits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from lsx.analysis import drift as D
from lsx.analysis import structure as S
from lsx.errors import ConfigError, DataShapeError


def blobs(n_per: int, k: int, dim: int, seed: int, spread: float = 0.5) -> tuple:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(k, dim))
    y = np.repeat(np.arange(k), n_per)
    z = centres[y] + rng.normal(0, spread, size=(len(y), dim))
    perm = rng.permutation(len(y))
    return z[perm].astype(np.float32), y[perm]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_sweep_recovers_planted_blobs(seed):
    z, y = blobs(150, 5, 16, seed)
    cl = S.fit_clusters(z, seed=seed)
    assert cl.k == 5, cl.sweep  # the silhouette picks the planted number
    assert adjusted_rand_score(y, cl.labels) >= 0.9
    assert len(cl.sweep) == S.K_RANGE[1] - S.K_RANGE[0] + 1
    assert np.array_equal(S.cluster_latents(z, seed=seed), cl.labels)  # same seed, same labels


def test_sampled_fit_assigns_every_point_to_its_nearest_centre(monkeypatch):
    monkeypatch.setattr(S, "SWEEP_SAMPLE", 300)
    monkeypatch.setattr(S, "FIT_SAMPLE", 400)
    z, y = blobs(400, 4, 8, 3)
    cl = S.fit_clusters(z, seed=0)
    assert cl.n_fit == 400 < len(z)
    assert "assigned to the nearest centre" in cl.note
    brute = cdist(z.astype(np.float64), cl.centres).argmin(1)
    assert np.array_equal(cl.labels, brute)
    assert adjusted_rand_score(y, cl.labels) >= 0.9


def test_fixed_k_and_hdbscan():
    z, y = blobs(100, 3, 4, 5)
    assert S.fit_clusters(z, k=3).k == 3
    assert S.fit_clusters(z, k=3).sweep == ()
    hd = S.fit_clusters(z, method="hdbscan", seed=0)
    assert hd.method == "hdbscan"
    assert adjusted_rand_score(y, hd.labels) >= 0.9


def test_identical_latents_give_one_cluster_with_a_reason():
    cl = S.fit_clusters(np.ones((500, 8), dtype=np.float32), seed=0)
    assert cl.k == 1
    assert set(cl.labels.tolist()) == {0}
    assert "identical" in cl.note
    assert "collapsed" in cl.note
    assert math.isnan(cl.silhouette)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(DataShapeError, match="NaN"):
        S.fit_clusters(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    with pytest.raises(DataShapeError, match="2-D"):
        S.fit_clusters(np.zeros(10))
    with pytest.raises(ConfigError, match="kmeans"):
        S.fit_clusters(np.zeros((10, 2)), method="dbscan")
    with pytest.raises(ConfigError, match="HDBSCAN is exact"):
        S.fit_clusters(np.random.default_rng(0).normal(size=(S.HDBSCAN_MAX + 1, 2)),
                       method="hdbscan")  # fmt: skip


def test_cluster_table_sizes_exemplars_and_purity():
    z, y = blobs(60, 3, 4, 7)
    y_noisy = y.copy()
    y_noisy[:10] = (y_noisy[:10] + 1) % 3  # 10 wrong labels
    cl = S.fit_clusters(z, k=3, seed=0)
    rows = S.cluster_table(z, cl.labels, cl.centres, y_noisy, n_exemplars=4)
    assert sum(r.size for r in rows) == len(z)
    assert [r.size for r in rows] == sorted((r.size for r in rows), reverse=True)
    for r in rows:
        members = np.flatnonzero(cl.labels == r.cluster)
        d = np.linalg.norm(z[members] - cl.centres[r.cluster], axis=1)
        assert list(r.exemplars) == members[np.argsort(d, kind="stable")[:4]].tolist()
        codes, counts = np.unique(y_noisy[members], return_counts=True)
        assert r.majority == codes[counts.argmax()]
        assert r.purity == counts.max() / len(members)
    assert S.purity(cl.labels, y_noisy) == pytest.approx((len(z) - 10) / len(z))
    no_labels = S.cluster_table(z, cl.labels, cl.centres)
    assert all(r.majority is None and math.isnan(r.purity) for r in no_labels)


def test_outlier_score_ranks_planted_outliers_first():
    rng = np.random.default_rng(0)
    inliers = rng.normal(0, 1, size=(2000, 16))
    outliers = rng.normal(0, 1, size=(40, 16)) * 1.0 + rng.choice([-6, 6], size=(40, 16))
    z = np.concatenate([inliers, outliers]).astype(np.float32)
    truth = np.r_[np.zeros(2000), np.ones(40)]
    scores = S.outlier_scores(z, k=10)
    assert roc_auc_score(truth, scores) >= 0.95
    assert set(S.top_share(scores, 40 / len(z)).tolist()) == set(range(2000, 2040))


def test_outlier_score_is_the_mean_distance_to_the_k_nearest_other_points():
    z = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32)
    z[7] = z[8]  # a duplicate pair: each is the other's neighbour at distance 0
    d = cdist(z.astype(np.float64), z.astype(np.float64))
    np.fill_diagonal(d, np.inf)
    brute = np.sort(d, axis=1)[:, :4].mean(1)
    assert np.allclose(S.outlier_scores(z, k=4), brute, atol=1e-5)


def test_outlier_score_on_a_reference_sample_matches_brute_force_to_that_sample():
    z = np.random.default_rng(2).normal(size=(600, 4)).astype(np.float32)
    got = S.outlier_scores(z, k=3, reference_max=200, seed=5)
    ref = S._sample(600, 200, 5)
    d = cdist(z.astype(np.float64), z[ref].astype(np.float64))
    d[ref, np.arange(200)] = np.inf  # a reference row does not count itself
    assert np.allclose(got, np.sort(d, axis=1)[:, :3].mean(1), atol=1e-5)


def test_percentiles_and_top_share():
    p = S.percentile_ranks(np.array([3.0, 1.0, 2.0, np.nan, 2.0]))
    assert p[:3].tolist() == [100.0, 25.0, 75.0]
    assert math.isnan(p[3])
    assert p[4] == 75.0
    assert S.top_share(np.array([0.1, 0.9, 0.5, 0.9]), 0.5).tolist() == [1, 3]
    with pytest.raises(ConfigError):
        S.top_share(np.ones(3), 0)


def test_near_duplicate_groups_join_close_pairs_only():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 5, size=(200, 6))
    z[50] = z[10] + 1e-4
    z[51] = z[10] - 1e-4  # a group of three around row 10
    z[90] = z[20] + 2e-4  # a pair
    groups = S.near_duplicate_groups(z.astype(np.float32), threshold=1e-3)
    assert groups[10] == groups[50] == groups[51] == 0
    assert groups[20] == groups[90] == 1
    assert (groups >= 0).sum() == 5
    assert (S.near_duplicate_groups(z, threshold=0.0) >= 0).sum() == 0


def test_drift_test_has_its_size_under_the_null():
    rng = np.random.default_rng(4)
    population = rng.normal(size=(4000, 8))
    rejections = 0
    for split in range(50):
        ids = np.random.default_rng(split).permutation(len(population))
        res = D.drift_test(population[ids[:150]], population[ids[150:300]], seed=split,
                           n_permutations=200, clusters=False)  # fmt: skip
        rejections += res.p_value < 0.05
    assert rejections <= 5  # at most 10 % false positives at alpha = 0.05


def test_drift_test_finds_a_shift_and_the_new_cluster():
    rng = np.random.default_rng(5)
    ref, _ = blobs(200, 3, 8, 6)
    new, _ = blobs(200, 3, 8, 6)  # same centres, other noise ...
    new = new[rng.permutation(len(new))[:400]]
    novel = rng.normal(0, 0.5, size=(200, 8)) + 25.0  # ... plus a cluster the reference lacks
    res = D.drift_test(ref, np.concatenate([new, novel]).astype(np.float32), seed=0)
    assert res.p_value <= 0.01
    assert res.novel_clusters
    assert res.share_in_novel_clusters == pytest.approx(200 / 600, abs=0.02)
    assert res.novelty.shape == (600,)
    assert (res.novelty[400:] > res.novelty_threshold).all()  # every new-cluster point is novel
    assert (res.novelty[:400] > res.novelty_threshold).mean() < 0.1
    same = D.drift_test(ref, new, seed=0)
    assert same.novel_clusters == ()
    assert same.share_in_novel_clusters == 0.0


def test_drift_test_refuses_sets_of_different_dimension():
    with pytest.raises(DataShapeError, match="same checkpoint"):
        D.drift_test(np.zeros((10, 4)), np.zeros((10, 5)))
