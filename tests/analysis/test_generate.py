"""lsx.analysis.generate: interpolation, traversal, inverse projection, sampling, edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsx.analysis import decode_array, project
from lsx.analysis.generate import (
    RULE_PCA,
    attribute_vector,
    check_decodable,
    forward_project,
    interpolate,
    inverse_project,
    pca_basis,
    sample_latents,
    traversal_directions,
    traverse,
)
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, make_config


def _blobs(n: int = 300, d: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * np.array([3.0, 2.0, 1.0, 0.5][:d]) + 1.0


def test_slerp_endpoints_equal_inputs_and_norms_follow_the_great_circle():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=6), rng.normal(size=6)
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal norms: the path is a great-circle arc
    path = interpolate(a, b, 9, "slerp")
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    cos = (path / np.linalg.norm(path, axis=1, keepdims=True)) @ (a / np.linalg.norm(a))
    angles = np.arccos(np.clip(cos, -1, 1))
    np.testing.assert_allclose(np.diff(angles), angles[-1] / 8, rtol=1e-9)  # constant speed
    lin = interpolate(a, b, 9, "linear")
    assert np.linalg.norm(lin[4]) < np.linalg.norm(a) - 1e-6  # the chord cuts inside
    np.testing.assert_allclose(lin[4], (a + b) / 2)


def test_slerp_with_unequal_norms_moves_the_norm_linearly():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 4.0])
    path = interpolate(a, b, 5, "slerp")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), [2, 2.5, 3, 3.5, 4])


@pytest.mark.parametrize(
    ("a", "b", "mode", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0], "linear", "a point and itself"),
        ([1.0, 2.0], [-1.0, -2.0], "slerp", "opposite"),
        ([0.0, 0.0], [1.0, 2.0], "slerp", "origin"),
        ([1.0, 2.0], [2.0, 1.0], "cubic", "Unknown interpolation mode"),
    ],
)
def test_interpolation_bad_input(a, b, mode, match):
    with pytest.raises(ConfigError, match=match):
        interpolate(np.array(a), np.array(b), 4, mode)


def test_pca_inverse_is_exact():
    z = _blobs()
    coords = project(z, "pca", 2, seed=0)
    basis = pca_basis(z, 2, seed=0)
    inv = inverse_project(coords[:50], coords, z, "pca", basis=basis)
    assert inv.rule == RULE_PCA
    back = forward_project(inv.z, z, coords, "pca", basis=basis)
    np.testing.assert_allclose(back, coords[:50], atol=1e-6)  # map -> latent -> map
    plane = inv.z[:10]  # points on the PCA plane come back exactly: latent -> map -> latent
    again = inverse_project(forward_project(plane, z, coords, "pca", basis=basis), coords, z, "pca")
    np.testing.assert_allclose(again.z, plane, atol=1e-6)


def test_local_rule_returns_the_latent_at_a_data_point_and_flags_far_points():
    z = _blobs(200, 3)
    coords = project(z, "pca", 2, seed=0).astype(np.float64)
    far = coords.max(axis=0) + 100.0
    inv = inverse_project(np.vstack([coords[7], far]), coords, z, "tsne", k=5)
    np.testing.assert_allclose(inv.z[0], z[7], atol=1e-6)  # weight 1/(0+eps) dominates
    assert "5 nearest" in inv.rule
    assert inv.extrapolated.tolist() == [False, True]
    assert inv.distance[1] > inv.threshold


def test_inverse_project_rejects_wrong_dimensions():
    z = _blobs(50, 3)
    coords = project(z, "pca", 2, seed=0)
    with pytest.raises(DataShapeError, match=r"shape \(n, 2\)"):
        inverse_project(np.zeros((1, 3)), coords, z, "pca")


def test_traversal_of_a_dimension_changes_only_that_dimension():
    z = _blobs()
    dirs, names = traversal_directions(z, "dims", [2])
    grid = traverse(z[0], dirs, np.linspace(-3, 3, 7))
    assert grid.shape == (1, 7, 4)
    assert names == ["z[2]"]
    changed = np.abs(grid[0] - z[0]) > 1e-12
    assert changed[:, 2].sum() == 6  # every column but the centre one
    assert not changed[:, [0, 1, 3]].any()
    np.testing.assert_allclose(grid[0, -1, 2] - z[0, 2], 3 * z[:, 2].std())


def test_pca_and_active_directions():
    z = _blobs()
    z[:, 3] = 0.001 * np.random.default_rng(0).normal(size=len(z))  # an inactive unit
    dirs, names = traversal_directions(z, "pca", n=2)
    assert names == ["PC 1", "PC 2"]
    assert dirs.shape == (2, 4)
    assert abs(dirs[0] @ dirs[1]) < 1e-8  # orthogonal
    _, active = traversal_directions(z, "active", n=8)
    assert active == ["z[0]", "z[1]", "z[2]"]  # most active first, the inactive one dropped
    with pytest.raises(ConfigError, match="out of range"):
        traversal_directions(z, "dims", [4])
    with pytest.raises(ConfigError, match="No active unit"):
        traversal_directions(z * 0.0001, "active")


def test_prior_samples_have_the_prior_mean_and_variance():
    cfg = make_config("vae", input_shape=(1, 8, 8), latent_dim=4, hidden_dim=16)
    s = sample_latents(build_model(cfg), 10_000, seed=3)
    assert s.z.shape == (10_000, 4)
    assert "prior" in s.rule
    np.testing.assert_allclose(s.z.mean(axis=0), 0.0, atol=0.05)  # 5 sigma of the mean: 0.05
    np.testing.assert_allclose(s.z.var(axis=0), 1.0, atol=0.07)
    again = sample_latents(build_model(cfg), 10_000, seed=3)
    np.testing.assert_array_equal(s.z, again.z)  # the seed decides


def test_other_kinds_sample_a_fitted_gaussian_and_sae_a_sphere():
    cfg = make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    model = build_model(cfg)
    z_fit = _blobs(5000, 3)
    s = sample_latents(model, 10_000, seed=0, z_fit=z_fit)
    assert "Gaussian fitted" in s.rule
    np.testing.assert_allclose(s.z.mean(axis=0), z_fit.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(s.z.std(axis=0), z_fit.std(axis=0), rtol=0.05)
    with pytest.raises(ConfigError, match="needs z_fit"):
        sample_latents(model, 4, seed=0)
    centre = np.array([5.0, -5.0])
    s = sample_latents(model, 2000, seed=0, z_fit=z_fit, sphere=(centre, 0.5, 0, 2))
    assert (np.linalg.norm(s.z[:, :2] - centre, axis=1) <= 0.5 + 1e-9).all()
    assert "sphere" in s.rule


def test_attribute_vector_and_empty_selection():
    z = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    v = attribute_vector(z, np.array([True, True, False]), np.array([False, False, True]))
    np.testing.assert_allclose(v, [2.0, -2.0])
    with pytest.raises(ConfigError, match="non-empty"):
        attribute_vector(z, np.zeros(3, bool), np.ones(3, bool))


def test_decoding_needs_a_decoder_compatible_latent():
    cfg = make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    model = build_model(cfg).eval()
    assert check_decodable(model, 3) == 3
    with pytest.raises(DataShapeError, match="decodes latents of 3"):
        check_decodable(model, 5)
    with pytest.raises(DataShapeError, match="no decoder-compatible latent"):
        check_decodable(torch.nn.Linear(2, 2))
    grid = traverse(np.zeros(3), np.eye(3), np.array([-1.0, 1.0]))
    images = decode_array(model, grid.reshape(-1, 3))
    assert images.shape == (6, 1, 8, 8)


@pytest.mark.slow
def test_umap_inverse_transform_is_used_when_a_model_is_given():
    import umap

    z = _blobs(300, 4).astype(np.float32)
    model = umap.UMAP(n_components=2, random_state=0, n_neighbors=10).fit(z)
    inv = inverse_project(model.embedding_[:3], model.embedding_, z, "umap", umap_model=model)
    assert "inverse_transform" in inv.rule
    assert inv.z.shape == (3, 4)
    assert np.isfinite(inv.z).all()
