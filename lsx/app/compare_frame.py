"""Compare page computations (``pages/7_compare.py``): both checkpoints' cached encodings of the
same samples, the numbers (lsx.analysis.compare), the Procrustes-aligned maps and the gallery's
reconstructions. The page's widgets, tables and rendering are :mod:`lsx.app.compare`.

Both checkpoints encode the SAME samples: every image of the chosen dataset (train then test), or
a per-class sample of ``cap`` of them (seed 0). Encodings go through :mod:`lsx.cache`, so they
share the on-disk cache of the Latent map page (same checkpoint, data hash and split = same
entry). Both 2-D maps are standardised (centred, unit RMS distance from the centre) and B's is
rotated or reflected onto A's (:func:`lsx.analysis.compare.align_maps`), so both panels use one
frame and have the same spread whatever the two latent scales. UMAP and t-SNE maps that are not
on disk yet are fitted in the app's one background worker (:func:`lsx.app.cache.projection_jobs`);
the page shows the PCA comparison meanwhile and switches by itself (:func:`pending`,
:func:`lsx.app.compare.wait_for_projections`).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis import reconstruct_array, sample_per_class
from lsx.analysis.compare import CentroidDrift, Comparison, align_maps, compare_latents
from lsx.app import cache
from lsx.cache import cached_embedding, cached_projection
from lsx.data import Dataset, load_dataset
from lsx.errors import ConfigError
from lsx.viz.latent import hover_texts


@dataclass(frozen=True)
class DataChoice:
    """A dataset both checkpoints can encode."""

    spec: str
    image_size: int | None
    label: str


def dataset(choice: DataChoice) -> Dataset:
    return load_dataset(choice.spec, image_size=choice.image_size)


@st.cache_data(max_entries=16, show_spinner="Encoding the samples with the checkpoint ...")
def _encode(run_dir: str, sha: str, spec: str, image_size: int | None, data_hash: str) -> tuple:
    """Latents and reconstruction errors of train then test, through the on-disk store."""
    model, _ = cache.load_run(run_dir, sha)
    ds = load_dataset(spec, image_size=image_size)
    parts = [
        cached_embedding(
            cache.run_cache(run_dir), model=model, checkpoint_sha=sha,
            data_hash=data_hash, split=split, x=getattr(ds, f"x_{split}"),
        )[0]
        for split in cache.SPLITS
    ]  # fmt: skip
    return np.concatenate([p.z for p in parts]), np.concatenate([p.recon_error for p in parts])


def _request(run_dir: str, sha: str, data_hash: str, method: str, cap: int) -> dict[str, Any]:
    """The lsx.cache arguments of one checkpoint's compare map (its on-disk cache entry)."""
    return {
        "cache_dir": cache.run_cache(run_dir), "checkpoint_sha": sha,
        "data_hash": data_hash, "split": f"compare-cap{cap}", "method": method,
        "n_components": 2, "seed": 0,
    }  # fmt: skip


def _project(
    run_dir: str, sha: str, data_hash: str, z: np.ndarray, method: str, cap: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D map of ``z`` and its manifest (plus ``disk_cache`` and ``load_or_compute_s``)."""
    start = time.perf_counter()
    coords, manifest, hit = cached_projection(z=z, **_request(run_dir, sha, data_hash, method, cap))
    info = {
        **manifest,
        "disk_cache": "hit" if hit else "miss",
        "load_or_compute_s": round(time.perf_counter() - start, 3),
    }
    return np.asarray(coords, dtype=np.float64), info


def _sample_ids(spec: str, image_size: int | None, cap: int) -> np.ndarray:
    """Positions (train first, then test) of the samples both checkpoints are compared on."""
    ds = load_dataset(spec, image_size=image_size)
    return sample_per_class(np.concatenate([ds.y_train, ds.y_test]), cap, seed=0)


def _fit_in_background(request: dict[str, Any], z: np.ndarray) -> float:
    """Runs in the worker thread: lsx only, no Streamlit calls (no ScriptRunContext there)."""
    start = time.perf_counter()
    cached_projection(z=z, **request)
    return time.perf_counter() - start


def projection_job(
    run_dir: str, sha: str, spec: str, image_size: int | None, data_hash: str, method: str,
    cap: int,
) -> Future | None:  # fmt: skip
    """None when this checkpoint's compare map is ready (in memory or on disk); else its job.

    A missing UMAP/t-SNE map is fitted in the app's one projection worker
    (:func:`lsx.app.cache.projection_jobs`, shared with the Latent map: fits never compete for
    the cores), once per key for every browser session; a failed job is started again by the
    next call. PCA is instant: always None.
    """
    if method == "pca":
        return None
    key = ("compare", run_dir, sha, spec, image_size, data_hash, method, int(cap))
    request = _request(run_dir, sha, data_hash, method, cap)
    z = None

    def cached() -> bool:
        nonlocal z
        z_all, _ = _encode(run_dir, sha, spec, image_size, data_hash)
        z = z_all[_sample_ids(spec, image_size, cap)]
        return cached_projection(z=z, **request, compute=False)[2]

    n_points = len(_sample_ids(spec, image_size, cap))  # for the estimate from earlier fits
    return cache.projection_jobs().job(
        key, cached, lambda: _fit_in_background(request, z), method=method, n_points=n_points
    )


def pending(
    runs: tuple[str, str], shas: tuple[str, str], choice: DataChoice, data_hash: str,
    method: str, cap: int,
) -> dict[str, Future]:  # fmt: skip
    """The background fits the aligned maps still wait for, by side (``"A"``, ``"B"``).

    Empty when both maps are ready (PCA, or UMAP/t-SNE in memory or on disk); the same
    checkpoint twice shares one job.
    """
    jobs = {}
    for side, run_dir, sha in zip(("A", "B"), runs, shas, strict=True):
        job = projection_job(run_dir, sha, choice.spec, choice.image_size, data_hash, method, cap)
        if job is not None:
            jobs[side] = job
    return jobs


@dataclass(frozen=True, eq=False)
class CompareFrame:
    """Everything the Compare page shows for one pair of checkpoints, data and settings.

    ``ids`` number the dataset's train samples first, then its test samples.
    """

    ids: np.ndarray  # (n,) int64
    y: np.ndarray  # (n,) class codes
    class_names: tuple[str, ...]
    coords_a: np.ndarray  # (n, 2)
    coords_b: np.ndarray  # (n, 2), aligned to A's frame
    jaccard: np.ndarray  # (n,)
    order: np.ndarray  # (n,) positions, most changed first
    cka: float
    disparity: float
    map_disparity: float
    drift: CentroidDrift
    k: int
    err_a: np.ndarray
    err_b: np.ndarray
    hover: list[str]
    n_total: int
    method: str  # the projection of both maps
    manifests: tuple[dict[str, Any], dict[str, Any]]  # A's and B's projection manifests


@st.cache_data(max_entries=8, show_spinner="Comparing the two latent spaces ...")
def _numbers(
    run_a: str, sha_a: str, run_b: str, sha_b: str, spec: str, image_size: int | None,
    data_hash: str, k: int, cap: int,
) -> Comparison:  # fmt: skip
    """kNN Jaccard, CKA, disparity and drift of the compared samples: no projection involved,
    so switching the map's method reuses them (seconds for large spatial latents)."""
    ds = load_dataset(spec, image_size=image_size)
    ids = _sample_ids(spec, image_size, cap)
    z_a, _ = _encode(run_a, sha_a, spec, image_size, data_hash)
    z_b, _ = _encode(run_b, sha_b, spec, image_size, data_hash)
    y = np.concatenate([ds.y_train, ds.y_test])[ids]
    return compare_latents(z_a[ids], z_b[ids], y, k=k)


@st.cache_data(max_entries=8, show_spinner="Projecting and aligning the two maps ...")
def comparison(
    run_a: str, sha_a: str, run_b: str, sha_b: str, spec: str, image_size: int | None,
    data_hash: str, method: str, k: int, cap: int,
) -> CompareFrame:  # fmt: skip
    """Encode both checkpoints on the same samples and compute every number of the page.

    UMAP/t-SNE maps missing from the disk cache are fitted here, in the request: the page asks
    :func:`pending` first and passes ``"pca"`` until the background fits are done.
    """
    ds = load_dataset(spec, image_size=image_size)
    z_a, err_a = _encode(run_a, sha_a, spec, image_size, data_hash)
    z_b, err_b = _encode(run_b, sha_b, spec, image_size, data_hash)
    y_all = np.concatenate([ds.y_train, ds.y_test])
    ids = _sample_ids(spec, image_size, cap)
    z_a, z_b, y = z_a[ids], z_b[ids], y_all[ids]
    numbers = _numbers(run_a, sha_a, run_b, sha_b, spec, image_size, data_hash, k, cap)
    coords_a, manifest_a = _project(run_a, sha_a, data_hash, z_a, method, cap)
    coords_b, manifest_b = _project(run_b, sha_b, data_hash, z_b, method, cap)
    fit = align_maps(coords_b, coords_a)  # both standardised: the same spread in both panels
    n_train = len(ds.x_train)
    in_train = ids < n_train
    hover = hover_texts(
        ids, np.where(in_train, "train", "test").tolist(), np.where(in_train, ids, ids - n_train),
        {ds.primary: np.asarray(ds.class_names, dtype=object)[y]}, None,
    )  # fmt: skip
    hover = [f"{h} · kNN Jaccard {j:.2f}" for h, j in zip(hover, numbers.jaccard, strict=True)]
    return CompareFrame(
        ids.astype(np.int64), y, tuple(ds.class_names), fit.target[:, :2], fit.aligned[:, :2],
        numbers.jaccard, numbers.order, numbers.cka, numbers.disparity, fit.disparity,
        numbers.drift, numbers.k, err_a[ids], err_b[ids], hover, len(y_all), method,
        (manifest_a, manifest_b),
    )  # fmt: skip


@st.cache_data(max_entries=16, show_spinner=False)
def gallery(
    run_a: str, sha_a: str, run_b: str, sha_b: str, spec: str, image_size: int | None,
    ids: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Inputs and both checkpoints' reconstructions of samples by id (train first, then test)."""
    ds = load_dataset(spec, image_size=image_size)
    n_train = len(ds.x_train)
    bad = [i for i in ids if not 0 <= i < n_train + len(ds.x_test)]
    if bad:
        raise ConfigError(f"Sample id(s) {bad[:5]} are not in {spec!r}.")
    x = np.stack([ds.x_train[i] if i < n_train else ds.x_test[i - n_train] for i in ids])
    model_a, _ = cache.load_run(run_a, sha_a)
    model_b, _ = cache.load_run(run_b, sha_b)
    return x, reconstruct_array(model_a, x), reconstruct_array(model_b, x)
