"""Shared test setup: seeds, the `slow` and `browser` markers, `--runslow`, tiny data."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny models are fastest on one thread; two collapse under contention
# no UMAP warm-up fit in the app's worker (lsx.app.background): it would hold a core for ~25 s
os.environ.setdefault("LSX_UMAP_WARMUP", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: convergence/quality tests, run with --runslow")
    config.addinivalue_line("markers", "browser: drives the app in Debian's chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds code that still uses the legacy global RNG
    random.seed(0)


@pytest.fixture
def tiny_dataset():
    """A 2-class dataset of 8x8 grey images: bright top half vs bright bottom half."""
    from lsx.data.base import Dataset

    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        x = rng.uniform(0, 0.2, size=(n, 1, 8, 8)).astype(np.float32)
        x[y == 0, :, :4] += 0.7
        x[y == 1, :, 4:] += 0.7
        return x, y.astype(np.int64)

    x_tr, y_tr = make(48)
    x_te, y_te = make(16)
    return Dataset(
        "tiny", x_tr, x_te, {"label": y_tr}, {"label": y_te}, {"label": ("top", "bottom")}
    )
