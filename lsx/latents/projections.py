"""Tiered projections of a whole latent store, cached in the store's own ``projections/`` folder.

Each entry is ``<method>-<key>.npy`` plus its manifest, written and checked with the helpers of
:mod:`lsx.cache` (atomic write, manifest last, sha/shape checks); the key is the store's identity
(weights, source, size, split) plus the projection request and its tier. An entry from another
store version is never served: it is recomputed and the manifest says why.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from lsx.analysis.projection import check_request
from lsx.analysis.tiers import DEFAULT_K, plan_projection, project_tiered, resolve_backend
from lsx.cache import (
    FORMAT_VERSION,
    Manifest,
    describe_diff,
    entry_paths,
    library_versions,
    load_arrays,
    read_manifest,
    write_entry,
)
from lsx.latents.store import LatentStore

STORE_PROJECTIONS_DIR = "projections"
_STORE_SLOT = ("method", "n_components", "seed", "params", "tier")  # same map, maybe another store


def store_identity(store: LatentStore) -> dict[str, Any]:
    """What a store's projection depends on: weights, source, size, split (from its manifest)."""
    m = store.manifest
    return {
        "checkpoint_sha": store.checkpoint_sha,
        "source_hash": store.source_hash,
        "n": store.n,
        "dim": store.dim,
        "split": str(m.get("split")),
        "model_kind": str(m.get("model_kind")),
    }


def store_projection_request(
    store: LatentStore,
    method: str,
    n_components: int = 2,
    seed: int = 0,
    *,
    exact_max: int | None = None,
    sample_size: int | None = None,
    k: int = DEFAULT_K,
    backend: str = "auto",
) -> dict[str, Any]:
    """The manifest fields that identify one projection of ``store`` (ConfigError if invalid)."""
    params = check_request(method, n_components, seed, None)
    tier = plan_projection(store.n, method, exact_max=exact_max, sample_size=sample_size, k=k)
    return {
        "format_version": FORMAT_VERSION,
        "kind": "store-projection",
        "store": store_identity(store),
        "method": method,
        "n_components": int(n_components),
        "seed": int(seed),
        "params": params,
        "tier": {"name": tier.name, "exact_max": tier.exact_max, "n_fit": tier.n_fit, "k": tier.k},
        "backend": resolve_backend(method, backend),
        "versions": library_versions(),
    }


def _store_sibling_reason(store: LatentStore, request: Manifest) -> str | None:
    """Why a miss is a recomputation: the same map made from another store, say so."""
    for path in sorted((store.path / STORE_PROJECTIONS_DIR).glob(f"{request['method']}-*.json")):
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        same_map = all(old.get(f) == request[f] for f in _STORE_SLOT)
        if same_map and old.get("store") != request["store"]:
            diff = [
                f"{k} {v!r}" for k, v in old.get("store", {}).items() if request["store"][k] != v
            ]
            return f"the cached {path.name} was made from another store ({'; '.join(diff)})"
    return None


def cached_store_projection(
    store: LatentStore,
    method: str,
    n_components: int = 2,
    seed: int = 0,
    *,
    compute: bool = True,
    threads: int = 1,
    **tier: Any,
) -> tuple[np.ndarray | None, dict[str, Any], bool]:
    """The tiered projection of a store, from ``<store>/projections/`` when cached there.

    Parameters
    ----------
    store : LatentStore
    method, n_components, seed
        As in :func:`lsx.analysis.tiers.project_tiered` (labels: the store's primary labels).
    compute : bool
        False only looks: a miss returns ``(None, request, False)``.
    threads : int
        FAISS threads of the placement.
    **tier
        ``exact_max``, ``sample_size``, ``k``, ``backend`` (part of the key).

    Returns
    -------
    coords : ndarray of shape (n, n_components), float32, or None (miss with compute=False)
    manifest : dict
        The request plus the tier info of ``project_tiered`` (tier, backend, sample rule,
        placement rule and k, knn index info, seconds per stage), ``array_sha256``, ``created``;
        plus ``cached`` (False when the folder is read-only, with the reason) and
        ``recomputed_because`` when an entry from another store was replaced.
    hit : bool
    """
    request = store_projection_request(store, method, n_components, seed, **tier)
    cache_dir = store.path / STORE_PROJECTIONS_DIR
    array_path, manifest_path = entry_paths(cache_dir, request, prefix=method)
    manifest, _ = read_manifest(manifest_path)
    if manifest is not None and describe_diff(manifest, request, tuple(request)) is None:
        arrays, _ = load_arrays(array_path, manifest, {"coords": (store.n, int(n_components))})
        if arrays is not None:  # else corrupt, truncated or of another shape: recomputed
            return arrays["coords"], manifest, True
    stale = _store_sibling_reason(store, request)
    if not compute:
        return None, {**request, "cached": False, "stale_reason": stale}, False
    backend = request["backend"] if request["backend"] == "cuml" else "cpu"
    start = time.perf_counter()
    coords, info = project_tiered(
        store.z, method, n_components, seed=seed, labels=np.asarray(store.y),
        exact_max=request["tier"]["exact_max"], sample_size=request["tier"]["n_fit"],
        k=request["tier"]["k"] or DEFAULT_K, backend=backend, threads=threads,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    out = write_entry(cache_dir, request, {"coords": coords}, seconds, stale, prefix=method,
                 extra={"info": info})  # fmt: skip
    return coords, out, False
