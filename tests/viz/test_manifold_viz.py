"""lsx.viz.manifold: the Manifold page's figures show what the sweep measured."""

from __future__ import annotations

import numpy as np
import pytest

from lsx.analysis import manifold as mf
from lsx.models import build_model, make_config
from lsx.viz import manifold as mv


@pytest.fixture(scope="module")
def results() -> dict[str, mf.SweepResult]:
    x = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    out = {}
    for name, kind, fields in (
        ("CAE", "ae", {"arch": "conv", "spatial": True}),
        ("VAE", "vae", {"arch": "conv", "spatial": True}),
        ("vector", "vae", {}),
    ):
        config = make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=8, **fields)
        model = build_model(config).eval().requires_grad_(False)
        out[name] = mf.sweep(model, x, mf.SweepConfig(levels=(0.2, 0.5), max_components=6))
    return out


def test_rank_curves_plot_the_mean_ranks(results):
    summaries = {n: mf.sweep_strata(r) for n, r in results.items() if r.spatial}
    fig = mv.rank_curves(summaries, "gaussian level")
    assert len(fig.data) == 6  # 2 models x 3 modes
    np.testing.assert_allclose(fig.data[1].y, summaries["CAE"].mean_ranks[:, 1])
    assert [t.name for t in fig.data if t.showlegend] == ["CAE", "VAE"]


def test_strata_bars_stack_to_one_per_level(results):
    summaries = {n: mf.sweep_strata(r) for n, r in results.items() if r.spatial}
    fig = mv.strata_histograms(summaries)
    for axis in ("x", "x2"):
        bars = [t for t in fig.data if t.xaxis == axis]
        np.testing.assert_allclose(np.sum([t.y for t in bars], axis=0), 1.0)
        assert list(bars[0].x) == ["0", "0.2", "0.5"]
    names = [t.name for t in fig.data if t.showlegend]
    assert len(names) == len(set(names))  # one legend entry per triple


def test_trajectory_follows_the_sample_and_heatmaps_skip_vectors(results):
    fig = mv.trajectories(results, sample=99)  # clipped to the last image
    path = fig.data[1]
    np.testing.assert_allclose(path.x, results["CAE"].map_xy[:, 11, 0], rtol=1e-6)
    heat = mv.spectrum_heatmaps(results)
    assert len(heat.data) == 6  # the vector-latent model has no spectra
    assert len(mv.subspace_curves(results).data) == 9


def test_path_figures(results):
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=8, arch="conv")
    model = build_model(config.replace(spatial=True)).eval()
    x = np.random.default_rng(1).random((2, 1, 8, 8), dtype=np.float32)
    profile = mf.interpolation_profile(model, x[0], x[1], n_steps=10)
    fig = mv.path_profiles({"CAE": profile})
    np.testing.assert_allclose(fig.data[0].y, profile.steps)
    strip = mv.path_strip(profile, n_frames=5)
    assert strip.dtype == np.uint8
    assert strip.shape[0] == 8 * 7  # 8 px scaled to ~56
