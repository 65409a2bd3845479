"""Clusters and outlier scores of a whole latent store, cached in the store's ``structure/`` folder.

One entry per (store, seed, k): ``clusters-<key>.npz`` (cluster of every row, the centres, the
kNN-distance outlier score of every row; float32) plus its manifest (the sweep, the note, the
seconds), written and checked with the helpers of :mod:`lsx.cache` (atomic write, manifest last,
sha and shape checks). The key holds the store's identity, so an entry of another version of the
store is never served. The math is :mod:`lsx.analysis.structure`'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lsx.analysis.structure import (
    FIT_SAMPLE,
    K_RANGE,
    OUTLIER_K,
    REFERENCE_MAX,
    SILHOUETTE_SAMPLE,
    SWEEP_SAMPLE,
    fit_clusters,
    outlier_scores,
)
from lsx.cache import (
    FORMAT_VERSION,
    describe_diff,
    entry_paths,
    library_versions,
    load_arrays,
    read_manifest,
    write_entry,
)
from lsx.errors import ConfigError
from lsx.latents.projections import store_identity
from lsx.latents.store import LatentStore

STORE_STRUCTURE_DIR = "structure"


@dataclass(frozen=True, eq=False)
class StoreStructure:
    """Clusters and outlier scores of every row of a store."""

    labels: np.ndarray  # (n,) int64 cluster of each row
    centres: np.ndarray  # (k, dim) float32
    outlier: np.ndarray  # (n,) float32 kNN-distance score, higher = more unusual
    manifest: dict[str, Any]  # request + k + clusters_found (sweep, silhouette, note), seconds

    @property
    def k(self) -> int:
        """The number of clusters (one centre each)."""
        return len(self.centres)

    @cached_property
    def outlier_median(self) -> float:
        """The typical outlier score (a typical distance to the 10 nearest neighbours), computed
        once per loaded structure, not on every page rerun."""
        return float(np.median(self.outlier))

    @property
    def note(self) -> str:
        return str(self.manifest.get("clusters_found", {}).get("note", ""))


def store_structure_request(store: LatentStore, seed: int = 0, k: int | None = None) -> dict:
    """The manifest fields that identify the structure of ``store`` (ConfigError if invalid)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an int; got {seed!r}.")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ConfigError(f"k (clusters) must be an int >= 1, or None to choose it; got {k!r}.")
    return {
        "format_version": FORMAT_VERSION,
        "kind": "store-structure",
        "store": store_identity(store),
        "seed": int(seed),
        "clusters": {
            "method": "kmeans",
            "k": k,
            "k_range": list(K_RANGE),
            "sweep_sample": SWEEP_SAMPLE,
            "silhouette_sample": SILHOUETTE_SAMPLE,
            "fit_sample": FIT_SAMPLE,
        },  # fmt: skip
        "outlier": {"score": "mean kNN distance", "k": OUTLIER_K, "reference_max": REFERENCE_MAX},
        "versions": library_versions(),
    }


def cached_store_structure(
    store: LatentStore,
    seed: int = 0,
    k: int | None = None,
    *,
    compute: bool = True,
    threads: int = 1,
) -> tuple[StoreStructure | None, bool]:
    """Clusters and outlier scores of a store, from ``<store>/structure/`` when cached there.

    Returns ``(structure, hit)``; ``(None, False)`` on a miss with ``compute=False``. A store
    whose folder is read-only still gets its result (``manifest["cached"]`` is False).
    """
    request = store_structure_request(store, seed, k)
    cache_dir = store.path / STORE_STRUCTURE_DIR
    array_path, manifest_path = entry_paths(cache_dir, request, prefix="clusters")
    manifest, _ = read_manifest(manifest_path)
    if manifest is not None and describe_diff(manifest, request, tuple(request)) is None:
        k_found = int(manifest.get("k", 0))
        shapes = {"labels": (store.n,), "outlier": (store.n,), "centres": (k_found, store.dim)}
        arrays, _ = load_arrays(array_path, manifest, shapes)
        if arrays is not None:  # else corrupt, truncated or of another shape: recomputed
            return _structure(arrays, manifest), True
    if not compute:
        return None, False
    start = time.perf_counter()
    cl = fit_clusters(store.z, seed=seed, k=k)
    cluster_s = time.perf_counter() - start
    scores = outlier_scores(store.z, seed=seed, threads=threads)
    seconds = time.perf_counter() - start
    arrays = {
        "labels": cl.labels.astype(np.float32),  # exact below 2^24 clusters
        "centres": cl.centres.astype(np.float32),
        "outlier": scores.astype(np.float32),
    }
    extra = {
        "k": cl.k,  # the centres' shape, read before they are loaded
        "clusters_found": {
            "note": cl.note,
            "n_fit": cl.n_fit,
            "sweep": [[kk, s] for kk, s in cl.sweep],
            "silhouette": cl.silhouette,
            "seconds": round(cluster_s, 3),
        },  # fmt: skip
        "outlier_seconds": round(seconds - cluster_s, 3),
    }
    out = write_entry(cache_dir, request, arrays, seconds, None, prefix="clusters", extra=extra)
    return _structure(arrays, out), False


def _structure(arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> StoreStructure:
    return StoreStructure(
        labels=arrays["labels"].astype(np.int64),
        centres=arrays["centres"],
        outlier=arrays["outlier"],
        manifest=manifest,
    )
