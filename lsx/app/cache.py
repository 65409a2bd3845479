"""Cached, shared loaders of the app: runs, models, datasets, embeddings, projections, the one
background projection worker, a run's latent stores and samples by id. No page-specific code:
a page's own caches live in its module (``lsx.app.dataset_map``, ``lsx.app.lookup``, ...), which
imports this one, never the other way round.

Rules (docs/architecture.md):
- Models come from ``st.cache_resource(max_entries=4)`` keyed by ``(run_dir, weights sha)``:
  loaded once, ``eval()``, ``requires_grad_(False)``, never mutated, used under
  ``torch.inference_mode()`` (inside ``lsx.analysis``), so threads can share them.
- Everything else is a bounded ``st.cache_data`` with str/int arguments. Embeddings and
  projections go through :mod:`lsx.cache`, so they also persist on disk in ``<run_dir>/cache/``
  and survive a server restart; a rerun never encodes or projects again.
Only values lsx produced are cached (``cache_data`` pickles).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import streamlit as st
from torch import nn

from lsx.analysis import reconstruct_array
from lsx.app.background import Jobs, warmup_enabled
from lsx.app.state import THREADS_ENV, configure_torch  # noqa: F401  (re-exported)
from lsx.cache import cached_embedding, cached_projection
from lsx.checkpoint import (
    CONFIG_NAME,
    EMBEDDING_SET_FILE,
    METRICS_NAME,
    STATUS_NAME,
    WEIGHTS_NAME,
    RunInfo,
    list_runs,
    load_checkpoint,
    read_header,
    weights_sha256,
)
from lsx.config import ModelConfig
from lsx.data import Dataset, load_dataset
from lsx.embeddings import EmbeddingSet, list_embedding_sets, store_path
from lsx.errors import CheckpointError, ConfigError
from lsx.paths import extra_roots, run_cache_dir

CACHE_SUBDIR = "cache"  # <run_dir>/cache/, managed by lsx.cache (git-ignored)
SPLITS = ("train", "test")


def run_cache(run_dir: str | Path) -> Path:
    """``<run_dir>/cache``, or a user cache folder for a demo run inside the installed package
    (:func:`lsx.paths.run_cache_dir`: nothing is written into the package)."""
    return run_cache_dir(Path(run_dir), CACHE_SUBDIR)


# ------------------------------------------------------------------------------ runs


def _stamp(root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of the files list_runs reads: a change means "list again"."""
    out: list[tuple[str, int]] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return ()
    for entry in entries:
        try:
            out.append((entry.name, entry.stat().st_mtime_ns))
        except OSError:  # a dangling link: list_runs says why it is skipped
            out.append((entry.name, -1))
            continue
        if entry.is_dir():
            for name in (CONFIG_NAME, WEIGHTS_NAME, STATUS_NAME, METRICS_NAME):
                try:
                    out.append(
                        (f"{entry.name}/{name}", os.stat(Path(entry.path) / name).st_mtime_ns)
                    )
                except OSError:
                    continue
    return tuple(out)


@st.cache_data(max_entries=8, show_spinner=False)
def _list_runs(root: str, stamp: tuple[tuple[str, int], ...]) -> tuple[list[RunInfo], list]:
    return list_runs(Path(root))


def runs(root: Path) -> tuple[list[RunInfo], list[tuple[str, str]]]:
    """Valid runs under ``root`` and ``(name, reason)`` for each skipped entry.

    Listed again only when a run's files change (keyed by their modification times).

    Parameters
    ----------
    root : Path
        The checkpoints folder (in an installed package the shipped demo runs are listed after
        its runs; a run of the same name in ``root`` hides the demo).

    Returns
    -------
    runs : list of RunInfo
    skipped : list of (name, reason)
    """
    projection_jobs()  # the first page view of a server starts the worker and its UMAP warm-up
    found, skipped = _list_runs(str(root), _stamp(Path(root)))
    for extra in extra_roots(Path(root)):  # the installed package's demo runs, read-only
        names = {info.name for info in found}
        more, _ = _list_runs(str(extra), _stamp(extra))
        found = found + [info for info in more if info.name not in names]
    return found, skipped


@st.cache_resource(max_entries=8, show_spinner=False)
def _list_sets(root: str, stamp: tuple[tuple[str, int], ...]) -> tuple[list[EmbeddingSet], list]:
    return list_embedding_sets(Path(root))  # read-only memmaps, shared by every session


def embedding_sets(root: Path) -> tuple[list[EmbeddingSet], list[tuple[str, str]]]:
    """Embedding sets under ``root`` (latents without a model, :mod:`lsx.embeddings`) and
    ``(name, reason)`` for each unreadable one; listed again only when a set's files change."""
    stamp = []
    for path in sorted(Path(root).glob(f"*/{EMBEDDING_SET_FILE}")):
        for f in (path, store_path(path.parent) / "manifest.json"):
            try:
                stamp.append((str(f), f.stat().st_mtime_ns))
            except OSError:
                stamp.append((str(f), -1))
    return _list_sets(str(root), tuple(stamp))


def weights_version(run_dir: str) -> str:
    """sha256 (16 hex digits) of the run's weights, hashed again only when the file changes.

    Raises
    ------
    CheckpointError
        The run has no ``model.safetensors``.
    """
    try:
        info = (Path(run_dir) / WEIGHTS_NAME).stat()
    except OSError as err:
        raise CheckpointError(
            f"{run_dir} has no {WEIGHTS_NAME}; pick another run in the sidebar or retrain it."
        ) from err
    return _sha(run_dir, info.st_mtime_ns, info.st_size)


@st.cache_data(max_entries=64, show_spinner=False)
def _sha(run_dir: str, mtime_ns: int, size: int) -> str:
    return weights_sha256(Path(run_dir))


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint ...")
def load_run(run_dir: str, sha: str) -> tuple[nn.Module, ModelConfig]:
    """The run's model, shared read-only by every session (``sha`` is the cache key only).

    Returns
    -------
    model : nn.Module
        In eval mode, ``requires_grad_(False)``, on CPU. Never mutate it.
    config : ModelConfig

    Raises
    ------
    CheckpointError
        Missing, corrupt or mismatched files (see ``lsx.checkpoint.load_checkpoint``).
    """
    model, config = load_checkpoint(Path(run_dir))
    model.eval().requires_grad_(False)
    return model, config


def latent_numel(model: nn.Module) -> int:
    """Number of latent coordinates per sample.

    Parameters
    ----------
    model : nn.Module
        An lsx model (``latent_shape``).

    Returns
    -------
    int
        ``prod(model.latent_shape)``: a spatial latent ``(C, h, w)`` counts ``C * h * w``.
    """
    return int(math.prod(model.latent_shape))


def run_dataset(run_dir: str) -> tuple[Dataset, str | None]:
    """The dataset the run was trained on, and a warning if it changed since training.

    ``lsx.data.load_dataset`` caches it per process with read-only arrays.

    Returns
    -------
    dataset : Dataset
    warning : str or None
        Set when the content hash differs from the one recorded in ``config.json``.

    Raises
    ------
    CheckpointError
        ``config.json`` records no dataset.
    LsxError
        The dataset cannot be loaded (``ConfigError``, ``DatasetError``).
    """
    header = read_header(Path(run_dir))
    data = header.get("data") or {}
    spec = data.get("spec")
    if not spec:
        raise CheckpointError(
            f"{Path(run_dir) / CONFIG_NAME} records no dataset (its 'data' entry has no 'spec'), "
            "so lsx cannot tell which images to map. Runs trained with `python -m lsx train` "
            "record it; retrain this one that way."
        )
    ds = load_dataset(spec, image_size=data.get("image_size"), seed=int(data.get("seed", 0)))
    recorded = data.get("hash")
    warning = None
    if recorded and recorded != ds.content_hash:
        warning = (
            f"The dataset {spec!r} changed since this run was trained (recorded hash {recorded}, "
            f"now {ds.content_hash}). The map shows today's data through the trained model; "
            "retrain the run for a faithful picture."
        )
    return ds, warning


class OpenRun(NamedTuple):
    """What every run page loads first (each part comes from its own cache)."""

    sha: str
    model: nn.Module
    config: ModelConfig
    dataset: Dataset
    data_warning: str | None


def open_run(run_dir: str) -> OpenRun:
    """Weights hash, model, config, dataset and data-change warning of a run (LsxError if bad)."""
    sha = weights_version(run_dir)
    model, config = load_run(run_dir, sha)
    ds, data_warning = run_dataset(run_dir)
    return OpenRun(sha, model, config, ds, data_warning)


# ------------------------------------------------------------------------------ embeddings


@st.cache_data(max_entries=16, show_spinner="Encoding the dataset with the model ...")
def embedding(run_dir: str, sha: str, data_hash: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Latent codes ``(n, latent_numel)`` and reconstruction errors ``(n,)`` of one split.

    Read from ``<run_dir>/cache/`` when stored there, else computed once and stored.
    """
    model, _ = load_run(run_dir, sha)
    ds, _ = run_dataset(run_dir)
    x, _ = ds.split(split)
    emb, _, _ = cached_embedding(
        run_cache(run_dir),
        model=model,
        checkpoint_sha=sha,
        data_hash=data_hash,
        split=split,
        x=x,
    )
    return emb.z, emb.recon_error


@st.cache_data(
    max_entries=16,
    show_spinner="Projecting the latent codes (UMAP and t-SNE take a while the first time; "
    "the result is then cached on disk) ...",
)
def projection(
    run_dir: str, sha: str, data_hash: str, method: str, n_components: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Projection of train + test latents (train first), fitted once on both splits.

    Returns
    -------
    coords : ndarray of shape (n_train + n_test, n_components), float32
    manifest : dict
        lsx.cache's manifest plus ``disk_cache`` ("hit" or "miss") and ``load_or_compute_s``.
    """
    z = np.concatenate([embedding(run_dir, sha, data_hash, s)[0] for s in SPLITS])
    start = time.perf_counter()
    coords, manifest, hit = cached_projection(
        run_cache(run_dir),
        z=z,
        checkpoint_sha=sha,
        data_hash=data_hash,
        split="all",
        method=method,
        n_components=n_components,
        seed=seed,
    )
    info = {
        **manifest,
        "disk_cache": "hit" if hit else "miss",
        "load_or_compute_s": round(time.perf_counter() - start, 3),
    }
    return np.asarray(coords, dtype=np.float32), info


# ------------------------------------------------------------------------------ background fits


@st.cache_resource(show_spinner=False)
def projection_jobs() -> Jobs:
    """The one background worker that fits UMAP/t-SNE maps (datasets, latent stores, Compare);
    created on the first page view, it starts with the UMAP warm-up (lsx.app.background)."""
    return Jobs(warmup=warmup_enabled())


def _fit_in_background(run_dir: str, key: tuple, z: np.ndarray) -> float:
    """Runs in the worker thread: lsx only, no Streamlit calls (no ScriptRunContext there)."""
    _, sha, data_hash, method, n_components, seed = key
    start = time.perf_counter()
    cached_projection(
        run_cache(run_dir), z=z, checkpoint_sha=sha, data_hash=data_hash,
        split="all", method=method, n_components=n_components, seed=seed,
    )  # fmt: skip
    return time.perf_counter() - start


def projection_job(
    run_dir: str, sha: str, data_hash: str, method: str, n_components: int, seed: int
) -> Future | None:
    """None when the projection is ready (in memory or on disk); else its background job.

    A missing projection is started in the shared worker (once per key, shared by every
    browser session); a failed job is retried on the next call. PCA is instant: always None.
    """
    if method == "pca":
        return None
    key = (run_dir, sha, data_hash, method, int(n_components), int(seed))
    z = None

    def cached() -> bool:
        nonlocal z
        z = np.concatenate([embedding(run_dir, sha, data_hash, s)[0] for s in SPLITS])
        return cached_projection(
            run_cache(run_dir), z=z, checkpoint_sha=sha, data_hash=data_hash,
            split="all", method=method, n_components=n_components, seed=seed, compute=False,
        )[2]  # fmt: skip

    n_points = sum(len(embedding(run_dir, sha, data_hash, s)[0]) for s in SPLITS)
    return projection_jobs().job(
        key, cached, lambda: _fit_in_background(run_dir, key, z), method=method, n_points=n_points
    )


# ------------------------------------------------------------------------------ latent stores


@dataclass(frozen=True)
class StoreEntry:
    """One folder under ``<run>/stores/``: usable (``reason`` None) or why not."""

    path: str
    name: str
    reason: str | None
    n: int = 0
    dim: int = 0
    spec: str = ""
    split: str = ""


@st.cache_data(max_entries=16, show_spinner=False)
def _store_entries(run_dir: str, stamp: tuple) -> list[StoreEntry]:
    from lsx.latents.store import LatentStore, list_stores

    out = []
    for entry in list_stores(Path(run_dir)):  # usable = complete and from the current weights
        if isinstance(entry, LatentStore):
            out.append(
                StoreEntry(str(entry.path), entry.path.name, None, entry.n, entry.dim,
                           entry.spec, entry.split)
            )  # fmt: skip
        else:
            out.append(StoreEntry(str(entry[0]), entry[0].name, entry[1]))
    return out


def store_entries(run_dir: str | Path) -> list[StoreEntry]:
    """The run's latent stores (:func:`lsx.latents.list_stores`), listed again only when the
    weights or a store's manifest change (the Latent map, Lookup and Large datasets pages)."""
    from lsx.latents.store import stores_stamp

    return _store_entries(str(run_dir), stores_stamp(run_dir))


# ------------------------------------------------------------------------------ samples


@st.cache_data(max_entries=32, show_spinner=False)
def samples(
    run_dir: str, sha: str, data_hash: str, ids: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Inputs, reconstructions and captions of samples by id (train first, then test).

    Returns
    -------
    x, x_hat : ndarrays of shape (len(ids), C, H, W), float32 in [0, 1]
    captions : list of str
        ``"id 12 · digit 3"``: the id and the primary label.

    Raises
    ------
    ConfigError
        An id is outside ``0 .. n_train + n_test - 1``.
    """
    model, _ = load_run(run_dir, sha)
    ds, _ = run_dataset(run_dir)
    n_train, n_all = len(ds.x_train), len(ds.x_train) + len(ds.x_test)
    bad = [i for i in ids if not 0 <= i < n_all]
    if bad:
        raise ConfigError(
            f"Sample id(s) {bad[:5]} out of range; this run's data has ids 0..{n_all - 1} "
            f"(0..{n_train - 1} train, {n_train}..{n_all - 1} test)."
        )
    x = np.stack([ds.x_train[i] if i < n_train else ds.x_test[i - n_train] for i in ids])
    y = [int(ds.y_train[i]) if i < n_train else int(ds.y_test[i - n_train]) for i in ids]
    captions = [
        f"id {i} · {ds.primary} {ds.class_names[label]}" for i, label in zip(ids, y, strict=True)
    ]
    return x, reconstruct_array(model, x), captions
