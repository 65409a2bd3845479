"""Projection tiers: tier choice, sample + kNN placement checked against scipy's cdist, chunking,
memmap input, stratified samples, the cuML backend's message, and map quality (trustworthiness)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from lsx.analysis.projection import project
from lsx.analysis.tiers import (
    EXACT_MAX,
    draw_sample,
    plan_projection,
    project_tiered,
    resolve_backend,
)
from lsx.errors import ConfigError, DataShapeError

FAST_TSNE = {"max_iter": 250, "perplexity": 10.0}  # sklearn's minimum iterations: ~0.2 s at 120


def blobs(n: int, dim: int = 8, centers: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    z, y = make_blobs(n, n_features=dim, centers=centers, cluster_std=1.5, random_state=seed)
    return z.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def tiered():
    """600 points, t-SNE fitted on a stratified sample of 120, the other 480 placed by 5-NN."""
    z, y = blobs(600)
    coords, info = project_tiered(
        z, "tsne", seed=0, labels=y, exact_max=100, sample_size=120, k=5, params=FAST_TSNE
    )
    idx, _ = draw_sample(len(z), 120, labels=y, seed=0)
    return z, y, coords, info, idx


def test_default_thresholds_and_tier_boundaries():
    assert EXACT_MAX == {"pca": 200_000, "umap": 50_000, "tsne": 10_000}
    assert plan_projection(50_000, "umap").name == "exact"
    above = plan_projection(50_001, "umap")
    assert (above.name, above.n_fit, above.n_placed, above.k) == ("sample+knn", 50_000, 1, 15)
    assert plan_projection(10_001, "tsne").name == "sample+knn"
    assert plan_projection(200_001, "pca").name == "sample+transform"
    small = plan_projection(1000, "umap", exact_max=999, sample_size=100, k=200)
    assert (small.name, small.n_fit, small.k) == ("sample+knn", 100, 100)  # k capped at n_fit
    assert plan_projection(999, "umap", exact_max=999).name == "exact"
    text = plan_projection(1_000_000, "umap").describe()
    assert text == (
        "UMAP fitted on a stratified sample of 50,000 points; the other 950,000 placed by "
        "their 15 nearest neighbours in latent space"
    )
    assert plan_projection(1797, "umap").describe() == "exact UMAP on 1,797 points"
    with pytest.raises(ConfigError, match="Unknown projection method 'umapp'"):
        plan_projection(10, "umapp")
    with pytest.raises(ConfigError, match="exact_max must be an int >= 3; got 0"):
        plan_projection(10, "pca", exact_max=0)


def test_sampled_points_keep_their_fitted_coordinates(tiered):
    z, _, coords, info, idx = tiered
    assert info["tier"] == "sample+knn"
    assert info["n_fit"] == len(idx) == 120
    assert info["sample"]["rule"] == "stratified by label, seed 0"
    np.testing.assert_allclose(
        coords[idx], project(z[idx], "tsne", seed=0, **FAST_TSNE), rtol=1e-5, atol=1e-4
    )


def test_placed_point_is_the_mean_of_its_nearest_fitted_points(tiered):
    z, _, coords, info, idx = tiered
    rest = np.setdiff1d(np.arange(len(z)), idx)
    nearest = np.argsort(cdist(z[rest], z[idx]), axis=1)[:, :5]  # independent brute force
    expected = coords[idx][nearest].mean(axis=1)
    np.testing.assert_allclose(coords[rest], expected, rtol=1e-5, atol=1e-5)
    assert info["placement"]["k"] == 5
    assert info["placement"]["n_placed"] == 480
    assert info["placement"]["knn"]["method"] == "exact"
    assert "mean of the 2-D positions of the k=5 nearest fitted points" in info["placement"]["rule"]
    assert set(info["seconds"]) == {"sample", "fit", "index", "place", "total"}


def test_placed_points_stay_inside_the_fitted_bounding_box(tiered):
    _, _, coords, _, idx = tiered
    low, high = coords[idx].min(axis=0), coords[idx].max(axis=0)
    assert (coords >= low - 1e-5).all()
    assert (coords <= high + 1e-5).all()


def test_stratified_sample_covers_every_class():
    y = np.zeros(10_000, dtype=np.int64)
    y[:3] = 1  # a class of 3 points: a uniform sample of 50 would miss it most of the time
    y[3:40] = 2
    idx, rule = draw_sample(len(y), 50, labels=y, seed=4)
    assert set(y[idx]) == {0, 1, 2}
    assert (y[idx] == 1).sum() == 3
    assert len(idx) == 50
    assert np.all(np.diff(idx) > 0)
    uniform, rule_u = draw_sample(len(y), 50, seed=4)
    assert rule == "stratified by label, seed 4"
    assert rule_u == "uniform without replacement, seed 4"
    np.testing.assert_array_equal(uniform, draw_sample(len(y), 50, seed=4)[0])  # seeded


def test_exact_tier_equals_project():
    z, y = blobs(150)
    coords, info = project_tiered(z, "tsne", seed=1, labels=y, params=FAST_TSNE)
    np.testing.assert_allclose(coords, project(z, "tsne", seed=1, **FAST_TSNE), atol=1e-4)
    assert (info["tier"], info["backend"], info["n_fit"]) == ("exact", "sklearn", 150)
    assert info["sample"] is None
    assert info["placement"] is None
    pca, pca_info = project_tiered(z, "pca", 3)
    np.testing.assert_allclose(pca, project(z, "pca", 3), atol=1e-5)
    assert pca_info["describe"] == "exact PCA on 150 points"


def test_pca_above_the_limit_is_fitted_on_a_sample_and_applied_to_all():
    z, y = blobs(3000, dim=6)
    coords, info = project_tiered(z, "pca", labels=y, exact_max=1000, chunk_size=256)
    assert (info["tier"], info["n_fit"]) == ("sample+transform", 1000)
    exact = project(z, "pca")
    # the sample's covariance is close to the full one: same axes up to sign, small error
    signs = np.sign((coords * exact).sum(axis=0))
    assert np.abs(coords * signs - exact).max() < 0.05 * np.abs(exact).max()


def test_chunked_placement_equals_one_shot_and_memmap_input(tmp_path):
    z, y = blobs(500)
    kwargs = dict(labels=y, exact_max=90, sample_size=90, k=4, params=FAST_TSNE)
    one, _ = project_tiered(z, "tsne", chunk_size=10_000, **kwargs)
    path = tmp_path / "z.npy"
    np.save(path, z)
    mm = np.load(path, mmap_mode="r", allow_pickle=False)
    chunked, _ = project_tiered(mm, "tsne", chunk_size=7, **kwargs)
    np.testing.assert_array_equal(one, chunked)


def test_bad_inputs_say_what_to_do(tmp_path):
    z, y = blobs(200)
    with pytest.raises(DataShapeError, match=r"labels must have shape \(200,\)"):
        project_tiered(z, "pca", labels=y[:10], exact_max=50)
    z[150, 2] = np.nan  # outside the sample: found while placing, chunk by chunk
    with pytest.raises(DataShapeError, match="NaN or Inf values in 1 of"):
        project_tiered(z, "tsne", labels=np.zeros(200, int), exact_max=50, params=FAST_TSNE)
    with pytest.raises(DataShapeError, match="2-D array"):
        project_tiered(np.zeros(5), "pca")
    with pytest.raises(ConfigError, match="backend must be one of auto, cpu, cuml"):
        project_tiered(blobs(20)[0], "pca", backend="gpu")


def test_cuml_backend_without_cuml_says_so(monkeypatch):
    import lsx.analysis.tiers as tiers

    monkeypatch.setattr(tiers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="needs RAPIDS cuML and a CUDA GPU.*no cuML installed"):
        resolve_backend("umap", "cuml")
    with pytest.raises(ConfigError, match="needs RAPIDS cuML"):
        project_tiered(blobs(20)[0], "umap", backend="cuml")
    assert resolve_backend("umap", "auto") == "umap-learn"  # the reference, without a GPU
    assert resolve_backend("pca", "auto") == "sklearn"
    with pytest.raises(ConfigError, match="cuML backend is offered for UMAP only"):
        resolve_backend("tsne", "cuml")


def test_tiered_map_keeps_neighbourhoods_like_the_exact_one():
    """Fast stand-in for the UMAP test below: t-SNE on 900 points, fitted on 300."""
    z, y = blobs(900, dim=16, centers=6)
    exact, _ = project_tiered(z, "tsne", labels=y, params=FAST_TSNE)
    tiered, _ = project_tiered(z, "tsne", labels=y, exact_max=300, params=FAST_TSNE)
    t_exact = trustworthiness(z, exact, n_neighbors=10)
    t_tiered = trustworthiness(z, tiered, n_neighbors=10)
    assert t_tiered >= t_exact - 0.05, (t_exact, t_tiered)


@pytest.mark.slow
def test_tiered_umap_trustworthiness_within_002_of_exact_umap():
    z, y = blobs(5000, dim=16, centers=10)
    exact, _ = project_tiered(z, "umap", labels=y)
    tiered, info = project_tiered(z, "umap", labels=y, exact_max=1000)
    assert info["tier"] == "sample+knn"
    assert info["backend"] == "umap-learn"
    t_exact = trustworthiness(z, exact, n_neighbors=10)
    t_tiered = trustworthiness(z, tiered, n_neighbors=10)
    assert t_tiered >= t_exact - 0.02, (t_exact, t_tiered)
