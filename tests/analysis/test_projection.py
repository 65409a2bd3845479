"""project / PROJECTIONS / sample_per_class: agreement with sklearn, seeds, quality, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from lsx.analysis import PROJECTIONS, project, resolve_params, sample_per_class
from lsx.errors import ConfigError, DataShapeError

ROOT = Path(__file__).resolve().parents[2]
FAST_TSNE = {"max_iter": 250}  # sklearn's minimum; enough for reproducibility checks


# ------------------------------------------------------------------------------ registry


def test_registry_entries_are_complete():
    assert sorted(PROJECTIONS) == ["pca", "tsne", "umap"]
    for name, spec in PROJECTIONS.items():
        assert callable(spec.fit), name
        assert spec.summary, name
        assert "\n" not in spec.summary, name
        with pytest.raises(TypeError):
            spec.defaults["new"] = 1  # read-only: a caller cannot change the defaults
    assert PROJECTIONS["umap"].defaults["n_neighbors"] == 15
    assert PROJECTIONS["umap"].defaults["min_dist"] == 0.1


def test_resolve_params_merges_defaults():
    assert resolve_params("umap", {"n_neighbors": 5})["n_neighbors"] == 5
    assert resolve_params("umap") == dict(PROJECTIONS["umap"].defaults)
    assert list(resolve_params("tsne")) == sorted(PROJECTIONS["tsne"].defaults)


def test_importing_lsx_does_not_import_umap():
    code = "import lsx, lsx.analysis, lsx.cache; import sys; assert 'umap' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------ pca


@pytest.mark.parametrize("n_components", [2, 3])
def test_pca_matches_sklearn(blobs, n_components):
    z, _ = blobs
    coords = project(z, "pca", n_components)
    assert coords.shape == (150, n_components)
    assert coords.dtype == np.float32
    expected = PCA(n_components=n_components, random_state=0).fit_transform(z)
    np.testing.assert_allclose(coords, expected, rtol=1e-4, atol=1e-4)


def test_pca_of_a_2d_latent_in_3d_pads_zeros():
    z = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    coords = project(z, "pca", 3)
    assert coords.shape == (20, 3)
    np.testing.assert_array_equal(coords[:, 2], 0.0)
    np.testing.assert_allclose(coords[:, :2], PCA(2).fit_transform(z), atol=1e-5)


def test_integer_and_float64_latents_are_accepted(blobs):
    z, _ = blobs
    np.testing.assert_allclose(project(z.astype(np.float64)), project(z), atol=1e-5)
    assert project(np.arange(12).reshape(4, 3) % 5).dtype == np.float32


# ------------------------------------------------------------------------------ t-SNE


def test_tsne_is_reproducible_by_seed(blobs):
    z = blobs[0][:60]
    # With init="pca" sklearn's t-SNE is deterministic whatever the seed; same seed, same map.
    a = project(z, "tsne", seed=3, **FAST_TSNE)
    b = project(z, "tsne", seed=3, **FAST_TSNE)
    assert a.shape == (60, 2)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_components", [2, 3])
def test_tsne_handles_few_points_and_narrow_latents(n_components):
    z = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)  # perplexity capped
    coords = project(z, "tsne", n_components, **FAST_TSNE)
    assert coords.shape == (5, n_components)
    assert np.isfinite(coords).all()


# ------------------------------------------------------------------------------ UMAP


def test_umap_is_reproducible_by_seed(warm_umap, blobs):
    """The one UMAP test of the default run; the warmed fixture pays the numba JIT once."""
    z = blobs[0][:80]
    a = project(z, "umap", seed=0, n_epochs=50)
    b = project(z, "umap", seed=0, n_epochs=50)
    assert a.shape == (80, 2)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    small = project(z[:4], "umap", 3, seed=0, n_epochs=20)  # n_neighbors capped, random init
    assert small.shape == (4, 3)
    assert np.isfinite(small).all()


# ------------------------------------------------------------------------------ quality (slow)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pca", "umap", "tsne"])
def test_projection_keeps_neighbourhoods_of_blobs(warm_umap, blobs, method):
    z, _ = blobs
    coords = project(z, method, seed=0)
    assert trustworthiness(z, coords, n_neighbors=10) >= 0.8


# ------------------------------------------------------------------------------ errors


def test_unknown_method_lists_known_ones(blobs):
    with pytest.raises(
        ConfigError, match="Unknown projection method 'tnse'; known methods: pca, tsne, umap"
    ):
        project(blobs[0], "tnse")


def test_unknown_parameter_lists_known_ones(blobs):
    with pytest.raises(ConfigError, match=r"has no parameter\(s\) \['n_neighbours'\]; known"):
        project(blobs[0], "umap", n_neighbours=5)


@pytest.mark.parametrize("n_components", [1, 4, True, 2.0])
def test_n_components_must_be_2_or_3(blobs, n_components):
    with pytest.raises(ConfigError, match="n_components must be 2 or 3"):
        project(blobs[0], "pca", n_components)


@pytest.mark.parametrize("seed", [-1, 2**32, "0", 1.5])
def test_bad_seed(blobs, seed):
    with pytest.raises(ConfigError, match=r"seed must be an int in \[0, 2\*\*32\)"):
        project(blobs[0], "pca", seed=seed)


def test_bad_method_parameters(blobs):
    with pytest.raises(ConfigError, match="n_neighbors must be an int >= 2"):
        project(blobs[0], "umap", n_neighbors=1)
    with pytest.raises(ConfigError, match=r"min_dist must be a number in \[0, 1\]"):
        project(blobs[0], "umap", min_dist=-0.1)
    with pytest.raises(ConfigError, match="perplexity must be a number > 0"):
        project(blobs[0], "tsne", perplexity=0)
    with pytest.raises(ConfigError, match="Invalid parameter for the 'tsne' projection.*max_iter"):
        project(blobs[0], "tsne", max_iter=10)
    with pytest.raises(ConfigError, match="Invalid parameter for the 'pca' projection.*whiten"):
        project(blobs[0], "pca", whiten="yes")


@pytest.mark.parametrize(
    ("z", "match"),
    [
        (np.zeros(10), r"must be a real 2-D array .* shape \(10,\)"),
        (np.zeros((4, 2, 2)), "must be a real 2-D array"),
        (np.array([["a", "b"]] * 4), "must be a real 2-D array"),
        (np.ones((2, 4)), "needs at least 3 points"),
        (np.ones((5, 0)), "at least 1 feature"),
        (np.ones((5, 4)), "All 5 latent vectors are identical"),
    ],
)
def test_bad_latents(z, match):
    with pytest.raises(DataShapeError, match=match):
        project(z, "pca")


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_non_finite_latents_name_the_rows(blobs, method):
    z = blobs[0].copy()
    z[7, 2] = np.inf
    z[9, 0] = np.nan
    with pytest.raises(
        DataShapeError, match=r"NaN or Inf values in 2 of 150 rows \(first: row 7\)"
    ):
        project(z, method)


# ------------------------------------------------------------------------------ sample_per_class


def _class_counts(y: np.ndarray, idx: np.ndarray) -> dict:
    labels, counts = np.unique(y[idx], return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist(), strict=True))


def test_sample_per_class_is_balanced():
    y = np.repeat([0, 1, 2], 100)
    idx = sample_per_class(y, 30)
    assert _class_counts(y, idx) == {0: 10, 1: 10, 2: 10}
    assert idx.dtype == np.int64
    assert (np.diff(idx) > 0).all()  # sorted, no duplicates


def test_small_classes_give_their_share_to_the_others():
    y = np.array([0] * 2 + [1] * 50 + [2] * 50)
    assert _class_counts(y, sample_per_class(y, 30)) == {0: 2, 1: 14, 2: 14}
    assert sorted(_class_counts(y, sample_per_class(y, 10)).values()) == [2, 4, 4]


def test_remainders_keep_classes_within_one():
    rng = np.random.default_rng(0)
    for _ in range(50):
        y = rng.integers(0, rng.integers(1, 8), size=rng.integers(10, 200))
        cap = int(rng.integers(1, 120))
        idx = sample_per_class(y, cap, seed=int(rng.integers(100)))
        assert len(idx) == min(cap, len(y))
        assert len(np.unique(idx)) == len(idx)
        counts = _class_counts(y, idx)
        full = dict(zip(*np.unique(y, return_counts=True), strict=True))
        unsaturated = [c for k, c in counts.items() if c < full[k]]
        if unsaturated:  # every class not fully taken has (within one) the largest share
            assert max(counts.values()) - min(unsaturated) <= 1


def test_sample_per_class_is_deterministic_by_seed():
    y = np.tile(np.arange(5), 200)
    np.testing.assert_array_equal(sample_per_class(y, 50, seed=1), sample_per_class(y, 50, seed=1))
    assert not np.array_equal(sample_per_class(y, 50, seed=1), sample_per_class(y, 50, seed=2))


def test_sample_per_class_edge_cases():
    y = np.array(["cat", "dog", "dog", "cat", "eel"])
    np.testing.assert_array_equal(sample_per_class(y, 5), np.arange(5))  # n <= cap: all
    np.testing.assert_array_equal(sample_per_class(y, 100), np.arange(5))
    assert _class_counts(y, sample_per_class(y, 3)) == {"cat": 1, "dog": 1, "eel": 1}
    assert len(sample_per_class(y, 1)) == 1
    assert sample_per_class(np.array([], dtype=int), 3).shape == (0,)


def test_sample_per_class_errors():
    with pytest.raises(DataShapeError, match=r"y must be 1-D labels .* got shape \(2, 2\)"):
        sample_per_class(np.zeros((2, 2)), 3)
    for cap in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match="cap must be an int >= 1"):
            sample_per_class(np.zeros(10), cap)


# ------------------------------------------------------------------ progress (issue #17 item 5)


def test_progress_is_reported_only_inside_the_block_and_parsed_from_tqdm_bars():
    from lsx.analysis.projection import _EpochSink, _report, reporting_progress

    seen = []
    _report("fitting")  # no callback outside a block: nothing happens
    with reporting_progress(lambda *a: seen.append(a)):
        _report("neighbours")
        sink = _EpochSink(lambda *a: seen.append(a))
        sink.write("\r0/200")
        sink.write("\r57/200")
        sink.write("")  # tqdm's closing writes carry no count
        sink.flush()
    _report("fitting")
    assert seen == [("neighbours", 0, 0), ("epochs", 0, 200), ("epochs", 57, 200)]


def test_tsne_reports_that_it_is_fitting():
    from lsx.analysis.projection import reporting_progress

    seen = []
    z = np.random.default_rng(0).normal(size=(40, 3))
    with reporting_progress(lambda *a: seen.append(a)):
        project(z, "tsne", 2, seed=0, perplexity=5.0, max_iter=250)
    assert seen == [("fitting", 0, 0)]


@pytest.mark.slow
def test_umap_reports_its_epochs():
    from lsx.analysis.projection import reporting_progress

    seen = []
    z = np.random.default_rng(0).normal(size=(200, 4))
    with reporting_progress(lambda *a: seen.append(a)):
        project(z, "umap", 2, seed=0, n_epochs=30)
    assert seen[0] == ("neighbours", 0, 0)
    epochs = [done for stage, done, total in seen if stage == "epochs"]
    assert epochs[-1] == 30
    assert epochs == sorted(epochs)


@pytest.mark.slow
def test_warm_up_takes_the_pynndescent_path():
    from lsx.analysis.projection import PYNNDESCENT_FROM, WARMUP_POINTS, warm_up_umap

    assert WARMUP_POINTS > PYNNDESCENT_FROM
    warm_up_umap(n_epochs=2)  # runs without error; its effect on speed is in bench/first_visit.py
