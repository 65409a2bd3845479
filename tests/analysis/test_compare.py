"""lsx.analysis.compare against the definitions: CKA invariances and independence, kNN Jaccard by
hand and its identity value, Procrustes recovering a known similarity transform, centroid drift,
and the aligned snapshot sequence."""

from __future__ import annotations

import numpy as np
import pytest

from lsx.analysis.compare import (
    align_sequence,
    centroid_drift,
    compare_latents,
    knn_indices,
    knn_jaccard,
    linear_cka,
    pca_2d,
    procrustes_align,
    rank_by_change,
)
from lsx.errors import ConfigError, DataShapeError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(400, 6))  # distinct distances: no ties in the neighbour lists


def orthogonal(d: int, seed: int = 1) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))  # a random orthogonal matrix (Haar)


def cka_by_hsic(a: np.ndarray, b: np.ndarray) -> float:
    """Independent oracle: CKA as normalised HSIC of the linear Gram matrices (Kornblith, eq. 3)."""
    n = len(a)
    h = np.eye(n) - np.ones((n, n)) / n
    ka, kb = h @ a @ a.T @ h, h @ b @ b.T @ h
    return float(np.sum(ka * kb) / np.sqrt(np.sum(ka * ka) * np.sum(kb * kb)))


@pytest.mark.parametrize("scale", [1.0, 0.01, 37.0])
def test_cka_is_one_under_orthogonal_maps_and_isotropic_scaling(scale):
    q = orthogonal(6)
    assert linear_cka(X, X @ q * scale) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(X, X @ q * scale + 5.0) == pytest.approx(1.0, abs=1e-10)  # translation
    # a wider space: the same geometry embedded in more dimensions
    wide = np.hstack([X @ q, np.zeros((len(X), 4))]) @ orthogonal(10, seed=2)
    assert linear_cka(X, wide) == pytest.approx(1.0, abs=1e-10)


def test_cka_is_near_zero_for_independent_matrices_and_matches_the_hsic_form():
    a = RNG.normal(size=(2000, 8))
    b = RNG.normal(size=(2000, 12))
    assert linear_cka(a, b) < 0.02
    small_a, small_b = RNG.normal(size=(60, 5)), RNG.normal(size=(60, 3))
    mixed = small_a @ RNG.normal(size=(5, 3)) + 0.5 * small_b
    for p, q in ((small_a, small_b), (small_a, mixed)):
        assert linear_cka(p, q) == pytest.approx(cka_by_hsic(p, q), rel=1e-9)


def test_cka_of_a_non_isotropic_stretch_is_below_one():
    stretched = X * np.array([10.0, 1, 1, 1, 1, 1])
    assert linear_cka(X, stretched) < 0.9


def test_knn_jaccard_is_one_for_identical_latents_and_invariant_to_similarities():
    assert np.array_equal(knn_jaccard(X, X, k=10), np.ones(len(X)))
    moved = 3.0 * X @ orthogonal(6) - 2.0
    np.testing.assert_allclose(knn_jaccard(X, moved, k=10), 1.0)


def test_knn_jaccard_by_hand_on_a_line():
    # points on a line; in B the last point jumps next to the first
    a = np.array([[0.0], [1.0], [2.1], [3.3], [4.6]])
    b = np.array([[0.0], [1.0], [2.1], [3.3], [-0.9]])
    # k=1: A neighbours 1,0,1,2,3 ; B neighbours 4,0,1,2,0
    expected = np.array([0 / 2, 1, 1, 1, 0 / 2])
    np.testing.assert_allclose(knn_jaccard(a, b, k=1), expected)
    # k=2, point 0: A {1, 2}, B {4, 1} -> 1 shared of 3
    assert knn_jaccard(a, b, k=2)[0] == pytest.approx(1 / 3)


def test_knn_jaccard_of_independent_latents_is_near_chance():
    j = knn_jaccard(X, RNG.normal(size=(400, 3)), k=10)
    assert j.mean() < 0.05  # chance: about k / n = 0.025


def test_knn_indices_exclude_the_point_itself_even_with_duplicates():
    z = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    idx = knn_indices(z, 2)
    assert all(i not in row for i, row in enumerate(idx))
    assert set(idx[0]) == {1, 2}
    with pytest.raises(
        ConfigError,
        match=r"k \(neighbours per point\) must be an int in \[1, n_samples - 1 = 3\]; got 4",
    ):
        knn_indices(z, 4)


def test_rank_by_change_puts_lowest_jaccard_first():
    assert rank_by_change(np.array([0.5, 0.1, 1.0, 0.1])).tolist() == [1, 3, 0, 2]


def test_procrustes_recovers_a_known_similarity_transform():
    q = orthogonal(6, seed=3)
    target = 2.5 * X @ q + np.arange(6)
    fit = procrustes_align(X, target)
    assert fit.disparity == pytest.approx(0.0, abs=1e-12)
    assert fit.scale == pytest.approx(2.5)
    np.testing.assert_allclose(fit.rotation, q, atol=1e-10)
    np.testing.assert_allclose(fit.aligned, target, atol=1e-9)
    noisy = procrustes_align(RNG.normal(size=X.shape), target)
    assert noisy.disparity > 0.8


def test_procrustes_pads_different_widths_and_refuses_other_row_counts():
    fit = procrustes_align(X[:, :2], X)
    assert fit.aligned.shape == (400, 6)
    with pytest.raises(DataShapeError, match="z_a has 400 rows but z_b has 5"):
        procrustes_align(X, X[:5])


def test_centroid_drift_is_zero_for_the_same_space_and_finds_the_moved_class():
    y = np.arange(len(X)) % 4
    same = centroid_drift(X, 4.0 * X @ orthogonal(6) + 1.0, y)
    np.testing.assert_allclose(same.drift, 0.0, atol=1e-12)
    assert same.counts.tolist() == [100] * 4
    moved = X.copy()
    moved[y == 2] += np.array([3.0, 0, 0, 0, 0, 0])
    drift = centroid_drift(X, moved, y).drift
    assert drift.argmax() == 2
    assert drift[2] > 2 * np.delete(drift, 2).max()


def test_compare_latents_of_a_checkpoint_with_itself_gives_identity_values():
    y = np.arange(len(X)) % 5
    c = compare_latents(X, X.copy(), y, k=7)
    assert c.cka == pytest.approx(1.0)
    assert c.mean_jaccard == 1.0
    assert c.disparity == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(c.drift.drift, 0.0, atol=1e-12)
    assert c.k == 7
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        compare_latents(X, np.full_like(X, np.nan), y)


def test_align_sequence_removes_rotations_and_reflections_between_epochs():
    base = X[:, :3] * np.array([3.0, 1.5, 0.2])  # distinct principal axes
    frames = align_sequence([base, base @ orthogonal(3, 5), -base @ orthogonal(3, 6) * 4.0])
    for f in frames[1:]:
        np.testing.assert_allclose(f, frames[0], atol=1e-9)
    np.testing.assert_allclose(np.sqrt((frames[0] ** 2).sum(1).mean()), 1.0)
    assert pca_2d(X[:, :1]).shape == (400, 2)
    with pytest.raises(DataShapeError, match="same samples"):
        align_sequence([X, X[:10]])


def test_procrustes_disparity_equals_the_full_fit_and_scipy():
    from scipy.spatial import procrustes as scipy_procrustes

    from lsx.analysis.compare import procrustes_disparity

    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 6))
    b = a @ np.linalg.qr(rng.normal(size=(6, 6)))[0] * 2.0 + rng.normal(0, 0.3, (300, 6))
    got = procrustes_disparity(b, a)
    assert got == pytest.approx(procrustes_align(b, a).disparity, abs=1e-12)
    assert got == pytest.approx(scipy_procrustes(a, b)[2], abs=1e-9)  # independent oracle
    assert procrustes_disparity(a, a) == pytest.approx(0.0, abs=1e-12)
    wide = rng.normal(size=(300, 9))  # other widths are zero-padded as in procrustes_align
    assert procrustes_disparity(wide, a) == pytest.approx(procrustes_align(wide, a).disparity)
    assert procrustes_disparity(np.ones((5, 2)), a[:5]) == 1.0  # a collapsed map


# ------------------------------------------------------------------------------ map alignment


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(((a - a.mean(axis=0)) ** 2).sum(axis=1).mean()))


def test_align_maps_gives_both_maps_the_same_spread_when_scales_and_shapes_differ():
    from lsx.analysis.compare import align_maps

    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 2)) * [40.0, 25.0]  # a wide map (e.g. a VAE's)
    b = 0.002 * a @ orthogonal(2) + rng.normal(size=(500, 2)) * 0.06  # weakly related, tiny
    fit = align_maps(b, a)
    assert rms(fit.target) == pytest.approx(1.0)
    assert rms(fit.aligned) == pytest.approx(rms(fit.target))  # same spread: no small blob
    # least-squares Procrustes shrinks a poorly matching source: what the panel used to show
    shrunk = procrustes_align(b, a).aligned
    assert rms(shrunk) / rms(a) < 0.8 * rms(fit.aligned) / rms(fit.target)
    assert fit.disparity == pytest.approx(procrustes_align(b, a).disparity)


def test_align_maps_recovers_a_rotation_up_to_the_standardisation():
    from lsx.analysis.compare import align_maps

    a = X[:, :2]
    b = 7.0 * a @ orthogonal(2, seed=4) + 3.0
    fit = align_maps(b, a)
    np.testing.assert_allclose(fit.aligned, fit.target, atol=1e-9)
    assert fit.disparity == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------ metric units


def test_loss_terms_are_comparable_only_in_the_same_unit():
    from lsx.analysis.compare_metrics import metric_rows, term_unit

    assert term_unit("vae", "recon") != term_unit("ae", "recon")
    assert term_unit("ae", "recon") == term_unit("sae", "recon") == "MSE per pixel"
    assert term_unit("vae", "kl") == term_unit("iwae", "kl")
    vae = {"epoch": 25, "test_recon": 88.1, "test_kl": 23.8, "test_loss": 111.9}
    ae = {"epoch": 25, "test_recon": 0.0146, "test_loss": 0.0146}
    rows = {r["metric"]: r for r in metric_rows(vae, ae, "vae", "ae")}
    assert rows["test_recon"]["B − A"] is None
    assert rows["test_recon"]["change"] is None
    assert rows["test_recon"]["comparable"] == ("no: nats per image (-log p(x|z)) vs MSE per pixel")
    assert rows["test_loss"]["comparable"] == "no: the VAE objective vs the AE objective"
    assert rows["test_kl"]["comparable"] == "no: only A logs it"
    assert rows["epoch"]["B − A"] == 0
    sae = {"test_recon": 0.028, "test_in_sphere": 0.53}
    rows = {r["metric"]: r for r in metric_rows(ae, sae, "ae", "sae")}
    assert rows["test_recon"]["B − A"] == pytest.approx(0.028 - 0.0146)  # both per-pixel MSE
    assert rows["test_recon"]["comparable"] == "yes"
    assert "not an accuracy" in rows["test_in_sphere"]["note"]
    same = {r["metric"]: r for r in metric_rows(vae, vae, "vae", "vae", same_data=False)}
    assert same["test_recon"]["comparable"] == "no: measured on different data"


def test_reconstruction_rows_are_mse_and_psnr_of_the_same_samples():
    from lsx.analysis.compare_metrics import reconstruction_rows

    err_a, err_b = np.array([0.01, 0.001]), np.array([0.1, 0.1])
    rows = {r["metric"]: r for r in reconstruction_rows(err_a, err_b)}
    assert rows["MSE per pixel"]["A"] == pytest.approx(0.0055)
    assert rows["PSNR (dB)"]["A"] == pytest.approx(25.0)  # (20 + 30) / 2
    assert rows["PSNR (dB)"]["B"] == pytest.approx(10.0)
    assert rows["PSNR (dB)"]["B − A"] == pytest.approx(-15.0)
    with pytest.raises(DataShapeError, match="per-sample errors of the same samples"):
        reconstruction_rows(err_a, err_b[:1])
