"""The run's cluster space, shared by the Latent map page (centres and spheres, cluster
colourings, sanity table; :mod:`lsx.app.latent_map`) and the Lookup page (:mod:`lsx.app.lookup`),
and the run's OOD detector (calibrated on its test split) used by the Lookup page.

Caches follow :mod:`lsx.app.cache`: bounded ``st.cache_data`` with str/int keys, values produced
by lsx only; the model comes from ``cache.load_run`` and is never changed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from lsx.analysis.clusters import ClusterSpace, cluster_space, color_codes
from lsx.analysis.embedding import Embedding
from lsx.analysis.ood import OodDetector, fit_detector
from lsx.app import cache
from lsx.data import Dataset

GALLERY_PX = 56  # pixels per side of the small galleries of the Latent map and Lookup pages


@st.cache_data(max_entries=16, show_spinner="Locating the clusters ...")
def space(run_dir: str, sha: str, data_hash: str) -> ClusterSpace:
    """The run's cluster space (configured centres, or training centroids), calibrated."""
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    z_train, _ = cache.embedding(run_dir, sha, data_hash, "train")
    return cluster_space(model, z_train, ds.labels_train, ds.label_names)


@st.cache_data(max_entries=16, show_spinner="Calibrating the out-of-distribution test ...")
def ood_detector(run_dir: str, sha: str, data_hash: str) -> OodDetector:
    """The run's OOD detector, fitted on its test split (held out from training)."""
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    z_train, _ = cache.embedding(run_dir, sha, data_hash, "train")
    z_test, err_test = cache.embedding(run_dir, sha, data_hash, "test")
    return fit_detector(
        model, ds.x_test, z_train, space=space(run_dir, sha, data_hash),
        emb=Embedding(z_test, err_test),
    )  # fmt: skip


def all_latents(run_dir: str, sha: str, data_hash: str) -> np.ndarray:
    """Latents of train then test, shape ``(n_train + n_test, latent_numel)``."""
    return np.concatenate([cache.embedding(run_dir, sha, data_hash, s)[0] for s in cache.SPLITS])


def all_labels(ds: Dataset) -> dict[str, np.ndarray]:
    """Every label attribute's codes of train then test."""
    return {a: np.concatenate([ds.labels_train[a], ds.labels_test[a]]) for a in ds.label_names}


def color_values(
    run_dir: str, sha: str, ds: Dataset, z: np.ndarray, key: str, keep: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Latent-map colours for ``predicted:<attr>``, ``in_sphere:<attr>``, ``correct:<attr>``."""
    sp = space(run_dir, sha, ds.content_hash)
    labels = {a: v[keep] for a, v in all_labels(ds).items()}
    codes, categories, title = color_codes(sp, z[keep], labels, key)
    return codes, categories, f"{title} · {sp.rule} rule"
