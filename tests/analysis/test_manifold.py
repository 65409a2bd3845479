"""lsx.analysis.manifold: perturbations, unfoldings, ranks, Hilbert map, subspaces, strata,
verdicts, interpolation profiles and global descriptors.

Oracles: principal angles against scipy.linalg.subspace_angles; log-Euclidean distances against
scipy.linalg.logm; covariances against numpy.cov; unfoldings against torch.permute (the snippet of
docs/methods.md); ranks on tensors built with a known multilinear rank; the streaming PCA against an
exact SVD.
"""

from __future__ import annotations

import math
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from lsx.analysis import manifold as mf
from lsx.errors import ConfigError, DataShapeError

RNG = np.random.default_rng(0)


def spd(n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    a = rng.standard_normal((n, n + 3))
    return scale * (a @ a.T) / n + 0.1 * np.eye(n)


def tucker(core_ranks: tuple[int, int, int], shape: tuple[int, int, int], rng) -> np.ndarray:
    """A (C, h, w) tensor of multilinear rank ``core_ranks``: core x_1 A x_2 B x_3 C."""
    core = rng.standard_normal(core_ranks)
    a, b, c = (rng.standard_normal((n, r)) for n, r in zip(shape, core_ranks, strict=True))
    return np.einsum("ijk,ai,bj,ck->abc", core, a, b, c)


# ------------------------------------------------------------------------------ levels, config


def test_levels_default_sorted_and_always_include_clean():
    assert mf.check_levels(None) == (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    assert mf.check_levels([0.3, 0.1, 0.1]) == (0.0, 0.1, 0.3)
    assert mf.check_levels([2.5], "blur") == (0.0, 2.5)


@pytest.mark.parametrize(
    ("levels", "perturbation", "match"),
    [
        ([0.1, 1.5], "gaussian", r"level\(s\) \[1.5\] out of range for 'gaussian'.*\[0, 1\]"),
        ([-0.1], "gaussian", r"\[-0.1\] out of range"),
        ([float("nan")], "occlusion", r"\[nan\] out of range for 'occlusion'"),
        ([9.0], "blur", r"out of range for 'blur'.*pixels, in \[0, 8\]"),
        ([], "gaussian", "between 1 and 20 perturbation levels; got 0"),
        (["a"], "gaussian", "must be a list of numbers"),
        ([0.1], "rotate", "Unknown perturbation 'rotate'; use one of gaussian, blur, occlusion"),
    ],
)
def test_bad_levels_say_what_is_allowed(levels, perturbation, match):
    with pytest.raises(ConfigError, match=match):
        mf.check_levels(levels, perturbation)


def test_sweep_config_validates_its_fields():
    assert mf.SweepConfig(levels=(0.2,)).levels == (0.0, 0.2)
    with pytest.raises(ConfigError, match=r"out of range for 'gaussian'"):
        mf.SweepConfig(levels=(0.7, 2.0))
    with pytest.raises(ConfigError, match=r"'rtol' field of SweepConfig must be a finite number"):
        mf.SweepConfig(rtol=-1.0)
    with pytest.raises(ConfigError, match=r"'spsd_map' field of SweepConfig must be one of"):
        mf.SweepConfig(spsd_map="pinv")
    with pytest.raises(ConfigError, match=r"'n_angles' field of SweepConfig must be an int >= 1"):
        mf.SweepConfig(n_angles=0)


# ------------------------------------------------------------------------------ perturbations


def test_gaussian_noise_is_clipped_seeded_per_image_and_shared_across_levels():
    x = RNG.random((6, 1, 8, 8), dtype=np.float32) * 0.2 + 0.4  # away from the clip bounds
    a = mf.perturb(x, "gaussian", 0.05, seed=3)
    b = mf.perturb(x, "gaussian", 0.1, seed=3)
    np.testing.assert_allclose(b - x, 2 * (a - x), atol=1e-6)  # same draw at every level
    part = mf.perturb(x[2:4], "gaussian", 0.05, seed=3, index=np.array([2, 3]))
    np.testing.assert_array_equal(part, a[2:4])  # image 2 gets its noise whatever the batch
    assert not np.array_equal(mf.perturb(x, "gaussian", 0.05, seed=4), a)
    big = mf.perturb(x, "gaussian", 1.0)
    assert big.min() >= 0.0
    assert big.max() <= 1.0
    assert (big == 0).any()
    assert (big == 1).any()
    np.testing.assert_array_equal(mf.perturb(x, "gaussian", 0.0), x)


def test_blur_and_occlusion():
    x = RNG.random((3, 2, 12, 12), dtype=np.float32)
    blurred = mf.perturb(x, "blur", 2.0)
    assert blurred.shape == x.shape
    assert blurred.std() < 0.5 * x.std()
    np.testing.assert_allclose(blurred.mean(), x.mean(), atol=0.02)
    occ = mf.perturb(np.ones_like(x), "occlusion", 0.25)
    side = round(0.25 * 12)
    assert ((occ == 0).reshape(3, -1).sum(1) == 2 * side * side).all()  # both channels, 3x3
    again = mf.perturb(np.ones_like(x), "occlusion", 0.5)
    assert ((again == 0).reshape(3, -1).sum(1) == 2 * 36).all()
    with pytest.raises(DataShapeError, match=r"perturb expects images of shape \(n, C, H, W\)"):
        mf.perturb(x[0], "blur", 1.0)


# ------------------------------------------------------------------------------ matrix view


def test_unfoldings_match_the_papers_torch_snippet():
    z = RNG.standard_normal((5, 3, 4))
    m1, m2, m3 = mf.unfold(z)
    t = torch.from_numpy(z)
    np.testing.assert_array_equal(m1, t.reshape(5, 12).numpy())
    np.testing.assert_array_equal(m2, t.permute(1, 0, 2).reshape(3, 20).numpy())
    np.testing.assert_array_equal(m3, t.permute(2, 0, 1).reshape(4, 15).numpy())
    batch = mf.unfold(np.stack([z, 2 * z]))
    np.testing.assert_array_equal(batch[1][1], 2 * m2)


def test_covariances_match_numpy_cov_and_second_moments():
    z = RNG.standard_normal((4, 3, 5))
    covs = mf.mode_covariances(z, centered=True)
    for cov, m in zip(covs, mf.unfold(z), strict=True):
        np.testing.assert_allclose(cov, np.cov(m), atol=1e-12)
    raw = mf.mode_covariances(z, centered=False)
    for cov, m in zip(raw, mf.unfold(z), strict=True):
        np.testing.assert_allclose(cov, m @ m.T / m.shape[1], atol=1e-12)
    assert [c.shape for c in covs] == [(4, 4), (3, 3), (5, 5)]


def test_ranks_of_tensors_with_known_multilinear_rank():
    rng = np.random.default_rng(1)
    z = tucker((2, 3, 2), (6, 5, 4), rng)  # a multilinear rank needs r_i <= r_j * r_k
    assert tuple(mf.rank_triples(z, centered=False)) == (2, 3, 2)
    batch = np.stack([z, tucker((4, 2, 3), (6, 5, 4), rng), np.zeros((6, 5, 4))])
    np.testing.assert_array_equal(
        mf.rank_triples(batch, centered=False), [[2, 3, 2], [4, 2, 3], [0, 0, 0]]
    )
    # docs/methods.md: a random non-negative 64x4x4 tensor -> centred (15, 4, 4), one SPSD factor
    big = rng.random((64, 4, 4))
    assert tuple(mf.rank_triples(big)) == (15, 4, 4)
    assert tuple(mf.rank_triples(big, centered=False)) == (16, 4, 4)
    assert mf.factor_types((15, 4, 4), (64, 4, 4)) == ("SPSD", "SPD", "SPD")
    assert tuple(mf.rank_triples(np.full((3, 4, 4), 2.0))) == (0, 0, 0)  # constant rows


def test_tolerance_rule_is_stated_and_configurable():
    spec = np.array([1.0, 1e-3, 1e-7])
    assert mf.rank_tolerance(spec) == pytest.approx(3 * np.finfo(np.float32).eps)
    assert mf.numerical_rank(spec) == 2
    assert mf.numerical_rank(spec, rtol=1e-2) == 1
    assert mf.numerical_rank(spec, rtol=1e-9) == 3
    assert mf.numerical_rank(spec, atol=2.0) == 0
    a = RNG.standard_normal((7, 3))
    cov = a @ a.T  # rank 3 of 7
    tol = 1e-6 * np.linalg.eigvalsh(cov).max()
    assert mf.numerical_rank(mf.spectra(cov), rtol=1e-6) == np.linalg.matrix_rank(cov, tol=tol)


def test_vector_latents_have_no_modes():
    with pytest.raises(DataShapeError, match="A vector latent has no three modes"):
        mf.unfold(RNG.standard_normal((10, 16)))
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        mf.rank_triples(np.full((2, 3, 3), np.nan))


# ------------------------------------------------------------------------------ Hilbert view


def test_sym_vec_is_an_isometry():
    a = spd(5, RNG) - spd(5, RNG)
    assert np.linalg.norm(mf.sym_vec(a)) == pytest.approx(np.linalg.norm(a))
    assert mf.sym_vec(a).shape == (15,)


def test_log_euclidean_distances_match_a_direct_computation():
    rng = np.random.default_rng(2)
    a, b = spd(4, rng), spd(4, rng, scale=3.0)
    direct = np.linalg.norm(scipy.linalg.logm(a) - scipy.linalg.logm(b))
    assert mf.log_euclidean_distance(a, b) == pytest.approx(direct, rel=1e-9)
    np.testing.assert_allclose(mf.log_euclidean(a), scipy.linalg.logm(a).real, atol=1e-10)
    # the default map of SPD factors is that isometry (plus a constant projector block)
    fa, fb = mf.hilbert_map(a), mf.hilbert_map(b)
    assert np.linalg.norm(fa - fb) == pytest.approx(direct, rel=1e-9)
    reg = mf.hilbert_map(a, spsd_map="regularized", reg=1e-12)
    np.testing.assert_allclose(reg, mf.sym_vec(scipy.linalg.logm(a).real), atol=1e-8)
    with pytest.raises(DataShapeError, match="log_euclidean needs SPD matrices"):
        mf.log_euclidean(np.diag([1.0, 0.0]))


def test_range_log_map_of_rank_deficient_factors():
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.standard_normal((5, 2)))[0]
    x = u @ np.diag([4.0, 0.5]) @ u.T  # rank 2 of 5
    f = mf.hilbert_map(x)
    n_sym = 15
    proj = np.zeros((5, 5))
    iu = np.triu_indices(5, 1)
    proj[np.diag_indices(5)] = f[:5]
    proj[iu] = f[5:n_sym] / math.sqrt(2)
    proj = proj + np.triu(proj, 1).T
    np.testing.assert_allclose(proj, u @ u.T, atol=1e-10)  # the range's projector
    expected = u @ np.diag(np.log([4.0, 0.5])) @ u.T
    np.testing.assert_allclose(np.linalg.norm(f[n_sym:]), np.linalg.norm(expected), rtol=1e-10)
    # injective: same range and spectrum, other eigenvectors -> another point
    rot = u @ np.array([[0.0, 1.0], [1.0, 0.0]])
    y = rot @ np.diag([4.0, 0.5]) @ rot.T
    assert np.linalg.norm(mf.hilbert_map(y) - f) > 1.0
    feats = mf.hilbert_features(rng.random((2, 6, 3, 3)), mf.SweepConfig())
    assert feats.shape == (2, 6 * 7 + 3 * 4 + 3 * 4)
    with pytest.raises(ConfigError, match="Unknown spsd_map 'svd'"):
        mf.hilbert_map(x, spsd_map="svd")


# ------------------------------------------------------------------------------ subspaces


def test_principal_angles_match_scipy():
    rng = np.random.default_rng(4)
    for ka, kb in ((3, 3), (4, 2), (1, 5)):
        a, b = rng.standard_normal((12, ka)), rng.standard_normal((12, kb))
        ours = mf.principal_angles(a, b)
        np.testing.assert_allclose(ours, np.sort(scipy.linalg.subspace_angles(a, b)), atol=1e-12)
    a = rng.standard_normal((12, 3))
    tiny = a + 1e-9 * rng.standard_normal((12, 3))  # small angles: the sine branch
    np.testing.assert_allclose(
        mf.principal_angles(a, tiny), np.sort(scipy.linalg.subspace_angles(a, tiny)), atol=1e-15
    )
    angles = mf.principal_angles(a, rng.standard_normal((12, 3)))
    assert mf.grassmann_distance(angles) == pytest.approx(np.sqrt((angles**2).sum()))
    with pytest.raises(DataShapeError, match="different spaces"):
        mf.principal_angles(a, rng.standard_normal((10, 2)))


def test_streaming_subspace_matches_exact_pca():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 40)) + 3.0
    stream = mf._StreamingSubspace(10)
    for start in range(0, 300, 64):
        stream.add(x[start : start + 64])
    basis, mean, dim, capped, ratios = stream.result(0.9)
    exact_basis, exact_dim, exact_ratios = mf.principal_subspace(x, 0.9)
    assert dim == exact_dim
    assert not capped
    np.testing.assert_allclose(ratios[:6], exact_ratios[:6], atol=1e-10)
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-10)
    assert mf.principal_angles(basis[:, :dim], exact_basis).max() < 1e-6
    assert mf.energy_dimension(np.array([0.5, 0.3, 0.1]), 0.95) == (3, True)


# ------------------------------------------------------------------------------ sweeps


def test_sweep_of_a_spatial_model(spatial_model, images):
    config = mf.SweepConfig(levels=(0.1, 0.3), batch_size=4, max_components=8, n_angles=3)
    result = mf.sweep(spatial_model, images, config)
    assert result.spatial
    assert result.latent_shape == (2, 2, 2)
    assert result.ranks.shape == (3, 10, 3)
    assert result.map_xy.shape == (3, 10, 2)
    assert (result.displacement[0] == 0).all()
    assert (result.displacement[2] > 0).all()
    with torch.inference_mode():
        z0 = spatial_model.encode(torch.from_numpy(images)).numpy()
        z3 = spatial_model.encode(torch.from_numpy(mf.perturb(images, "gaussian", 0.3))).numpy()
    np.testing.assert_array_equal(result.ranks[0], mf.rank_triples(z0))
    np.testing.assert_array_equal(result.ranks[2], mf.rank_triples(z3))
    whole = mf.sweep(spatial_model, images, config.replace(batch_size=64))
    np.testing.assert_array_equal(whole.ranks, result.ranks)  # batching changes nothing
    np.testing.assert_allclose(whole.subspace.grassmann, result.subspace.grassmann, atol=1e-6)
    assert result.subspace.space == "hilbert"
    assert result.subspace.grassmann[0] == pytest.approx(0.0, abs=1e-12)
    assert [m.shape for m in result.mean_log_spectra] == [(3, 2)] * 3
    kept = mf.sweep(spatial_model, images, config, keep_spectra=True)
    np.testing.assert_array_equal(mf.numerical_rank(kept.spectra[0]), result.ranks[..., 0])


def test_sweep_of_a_vector_latent_runs_what_applies(vector_model, images):
    result = mf.sweep(vector_model, images, mf.SweepConfig(levels=(0.2,), max_components=3))
    assert not result.spatial
    assert result.ranks is None
    assert result.mean_log_spectra is None
    assert result.subspace.space == "latent"
    assert result.map_xy.shape == (2, 10, 2)
    v = mf.verdict(result)
    assert v.label == "vector latent"
    assert "no rank triples" in v.text
    assert mf.strata_rows("ae", result) == []
    assert len(mf.subspace_rows("ae", result)) == 2
    with pytest.raises(DataShapeError, match=r"latent is a vector \(3,\), not a tensor"):
        mf.sweep_strata(result)


def test_sweep_bad_input(spatial_model, images):
    with pytest.raises(DataShapeError, match=r"expects images of shape \(n, 1, 8, 8\)"):
        mf.sweep(spatial_model, images[:, :, :4])
    with pytest.raises(DataShapeError, match="at least 3 images; got 2"):
        mf.sweep(spatial_model, images[:2])
    bad = images.copy()
    bad[5, 0, 0, 0] = np.nan
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        mf.sweep(spatial_model, bad)
    with pytest.raises(ConfigError, match="out of range"):
        mf.sweep(spatial_model, images, mf.SweepConfig(levels=(0.1, 3.0)))


def test_sweep_is_batched_and_reads_a_memmap_piecewise(spatial_model, tmp_path):
    """A sweep never holds n_images x n_levels images: peak traced memory stays a fraction of
    what the perturbed sweep alone would take, on an input that lives on disk."""
    n = 3000
    x = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, 1, 8, 8)
    )
    x[:] = np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)
    x.flush()
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    config = mf.SweepConfig(batch_size=128, max_components=8, n_angles=2)
    tracemalloc.start()
    result = mf.sweep(spatial_model, x, config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole_sweep = len(config.levels) * x.nbytes  # every perturbed image at every level
    assert result.n_samples == n
    assert peak < 0.25 * whole_sweep, (peak, whole_sweep)


# ------------------------------------------------------------------------------ strata, verdict


def fake_result(ranks: np.ndarray, shape=(4, 3, 3)) -> mf.SweepResult:
    n_levels, n = ranks.shape[:2]
    sub = mf.SubspaceResult(
        "hilbert", 0.9, np.full(n_levels, 5), np.zeros(n_levels, bool), np.ones(n_levels), 2,
        np.zeros((n_levels, 2)), np.linspace(0, 1, n_levels), np.zeros(n_levels),
        np.zeros((n_levels, 5)),
    )  # fmt: skip
    return mf.SweepResult(
        mf.SweepConfig(levels=tuple(np.linspace(0, 0.5, n_levels)[1:])),
        np.linspace(0, 0.5, n_levels), shape, n, ranks, None, None,
        np.zeros((n_levels, n, 2)), np.zeros((n_levels, n)), sub,
    )  # fmt: skip


def test_strata_counts_per_level():
    ranks = np.array(
        [
            [[3, 3, 3]] * 8 + [[2, 3, 3]] * 2,
            [[3, 3, 3]] * 5 + [[2, 3, 3]] * 4 + [[1, 3, 3]],
        ]
    )
    s = mf.strata(ranks, [0.0, 0.5], (4, 3, 3), min_share=0.15)
    assert s.counts[0] == (((3, 3, 3), 8), ((2, 3, 3), 2))
    assert list(s.n_distinct) == [2, 3]
    assert s.n_strata == 2
    assert s.n_strata_all == 3
    np.testing.assert_allclose(s.mean_ranks[1], [2.4, 3, 3])
    np.testing.assert_allclose(s.change_rate, [0.0, 0.4])  # images 5-7 and 9 changed triple
    assert s.modal == ((3, 3, 3), (3, 3, 3))
    assert list(s.modal_share) == [0.8, 0.5]
    with pytest.raises(DataShapeError, match=r"ranks must have shape \(n_levels=3"):
        mf.strata(ranks, [0.0, 0.1, 0.5], (4, 3, 3))


def test_verdict_is_computed_from_the_ranks():
    stable = np.tile(np.array([3, 3, 3]), (4, 20, 1))
    v = mf.verdict(fake_result(stable))
    assert v.label == "smooth"
    assert v.text.startswith("ranks stable across noise: smooth")
    assert v.modal == (3, 3, 3)
    assert v.factors == ("SPSD", "SPD", "SPD")
    varying = stable.copy()
    varying[1:, :10] = [2, 3, 3]
    varying[3, 10:] = [3, 2, 3]
    v = mf.verdict(fake_result(varying))
    assert v.label == "stratified"
    assert v.text.startswith("3 strata: stratified")
    assert "100% of the images leave their clean stratum" in v.text
    rows = mf.strata_rows("cae", fake_result(varying))
    assert [r["strata"] for r in rows] == [1, 2, 2, 2]
    assert rows[0]["factors"] == "SPSD x SPD x SPD"


# ------------------------------------------------------------------------------ paths


class StepDecoder(nn.Module):
    """Decodes to black below z = 0.5 and to white above: a jump in the middle of the path."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(input_shape=(1, 8, 8), kind="step")
        self.latent_shape = (1, 2, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        level = (z.mean(dim=(1, 2, 3)) > 0.5).float() + 0.01 * z.mean(dim=(1, 2, 3))
        return level.reshape(-1, 1, 1, 1).expand(-1, 1, 8, 8)


def test_interpolation_profile_finds_a_jump():
    x_a, x_b = np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)
    p = mf.interpolation_profile(StepDecoder(), x_a, x_b, n_steps=10)
    assert p.steps.shape == (10,)
    assert p.images.shape == (11, 1, 8, 8)
    assert p.steps.argmax() == 5
    assert p.spike_ratio > 50
    assert p.ranks.shape == (11, 3)
    assert p.n_rank_changes == 0


def test_interpolation_profile_of_real_models(spatial_model, vector_model, images):
    p = mf.interpolation_profile(spatial_model, images[0], images[1], n_steps=4)
    with torch.inference_mode():
        ends = spatial_model.decode(spatial_model.encode(torch.from_numpy(images[:2]))).numpy()
    np.testing.assert_allclose(p.images[[0, -1]], ends, atol=1e-6)
    assert p.ranks.shape == (5, 3)
    assert np.isfinite(p.spike_ratio)
    q = mf.interpolation_profile(vector_model, images[0], images[1], n_steps=4)
    assert q.ranks is None
    assert q.n_rank_changes is None
    with pytest.raises(ConfigError, match=r"n_steps must be an int in \[2, 200\]; got 1"):
        mf.interpolation_profile(vector_model, images[0], images[1], n_steps=1)


# ------------------------------------------------------------------------------ global descriptors


def test_effective_rank_and_participation_ratio():
    assert mf.effective_rank([1.0, 1.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert mf.participation_ratio([1.0, 1.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert mf.participation_ratio([4.0, 1.0]) == pytest.approx(25 / 17)
    assert mf.effective_rank(np.ones(7)) == pytest.approx(7.0)
    z = np.random.default_rng(6).standard_normal((4000, 5)) * [3, 3, 3, 0, 0]
    assert mf.effective_rank(mf.covariance_spectrum(z)) == pytest.approx(3.0, abs=0.05)


def test_intrinsic_dimension_of_a_plane_and_a_5d_cloud():
    rng = np.random.default_rng(7)
    plane = rng.random((1500, 2)) @ rng.standard_normal((2, 10))
    assert mf.intrinsic_dimension_mle(plane) == pytest.approx(2.0, abs=0.3)
    assert mf.intrinsic_dimension_twonn(plane) == pytest.approx(2.0, abs=0.3)
    cloud = rng.standard_normal((1500, 5)) @ rng.standard_normal((5, 12))
    assert 4.0 < mf.intrinsic_dimension_mle(cloud) < 6.0
    assert 4.0 < mf.intrinsic_dimension_twonn(cloud) < 6.0
    dupes = np.vstack([plane[:200], plane[:200]])  # duplicates are dropped, not infinite
    assert np.isfinite(mf.intrinsic_dimension_twonn(dupes))


def test_global_descriptors(blobs):
    z, _ = blobs
    g = mf.global_descriptors(z, max_samples=100, seed=1)
    assert g.n_samples == 100
    assert g.latent_numel == 8
    assert 1.0 <= g.effective_rank <= 8
    assert 1.0 <= g.participation_ratio <= g.effective_rank
    assert 0.5 < g.trustworthiness <= 1.0
    assert g.id_mle > 0
    assert g.id_twonn > 0
    assert mf.trustworthiness_2d(z[:, :2]) == pytest.approx(1.0)  # already 2-D
    assert g.as_row("vae")["model"] == "vae"
    with pytest.raises(DataShapeError, match=r"Expected latents of shape \(n_samples >= 12"):
        mf.global_descriptors(z[:5])
