"""Fixtures of the analysis tests: tiny models, images, blobs, and UMAP warmed once per session."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from lsx.models import build_model, make_config


@pytest.fixture
def vector_model():
    """MLP autoencoder on 8x8 images, latent (3,)."""
    model = build_model(make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    return model.eval().requires_grad_(False)


@pytest.fixture
def spatial_model():
    """Conv autoencoder on 8x8 images, spatial latent (2, 2, 2)."""
    config = make_config(
        "ae", input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8, arch="conv", spatial=True
    )
    return build_model(config).eval().requires_grad_(False)


@pytest.fixture
def images() -> np.ndarray:
    """(10, 1, 8, 8) float32 in [0, 1]."""
    return np.random.default_rng(0).random((10, 1, 8, 8), dtype=np.float32)


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """150 float32 points in 8-D around 3 well separated centres, and their labels."""
    z, y = make_blobs(n_samples=150, n_features=8, centers=3, cluster_std=1.0, random_state=0)
    return z.astype(np.float32), y


@pytest.fixture(scope="session")
def warm_umap() -> None:
    """Pay umap's import and numba JIT once per test session: a seeded
    float32 fit through ``project``, the same code path and dtype the tests use."""
    from lsx.analysis import project

    z = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    project(z, "umap", seed=0, n_epochs=20)
