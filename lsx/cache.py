"""On-disk cache of embeddings and projections, each entry with a reproducibility manifest.

A cache folder (by default ``<run_dir>/cache/``) holds one entry per request:

- ``<kind>-<key>.npz`` (embedding: ``z`` and ``recon_error``) or ``<kind>-<key>.npy``
  (projection coordinates), loaded with ``allow_pickle=False`` only;
- ``<kind>-<key>.json``, the manifest: what was asked (checkpoint weights sha, dataset content hash,
  split, method, n_components, seed, parameters, number of points, library versions), plus when it
  was made, how long it took and the sha256 of the array file. It is written last, so an entry
  without one is incomplete.

``key`` is the sha256 of the sorted JSON of the request (everything but the creation time, the
compute time and the array sha). On a read the manifest must match the request and the array
file its recorded sha256, shape and dtype; otherwise the entry is stale: it is not served but
recomputed and overwritten, and the returned manifest says why (``"recomputed_because"``). A
miss whose request matches an entry made from another checkpoint, dataset or library versions
says so the same way. :func:`stale_entries` lists the files :func:`clear_stale` deletes.

Writes are atomic (:mod:`lsx.files`). A folder that cannot be written (read-only install)
is not an error: the result is computed and returned with ``"cached": False`` and the reason.
Latent stores keep their projections with the same helpers (:mod:`lsx.latents.projections`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
import math
import time
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lsx import __version__
from lsx.analysis.embedding import Embedding, check_images, embed
from lsx.analysis.projection import check_latents, check_request, project
from lsx.errors import ConfigError, LsxError
from lsx.files import atomic_write_bytes, atomic_write_json, read_json_capped

CACHE_DIR_NAME = "cache"
FORMAT_VERSION = 1
LIBRARIES = ("numpy", "torch", "scikit-learn", "umap-learn")  # versions recorded per entry
MAX_MANIFEST_BYTES = 1_000_000  # a manifest is < 2 KB (request, versions, sha); read no more
TMP_MAX_AGE_S = 3600.0  # a ".tmp-*" file older than this is a crashed write, not one in flight
_ARRAY_SUFFIX = {  # by kind
    "embedding": ".npz",
    "projection": ".npy",
    "store-projection": ".npy",
    "store-structure": ".npz",
}
# Fields that identify a request across checkpoints: same slot + other hashes = stale sibling.
_SLOT_FIELDS = ("kind", "split", "method", "n_components", "seed", "params")
_SOURCE_FIELDS = ("checkpoint_sha", "data_hash", "versions")

Manifest = dict[str, Any]


def default_cache_dir(run_dir: Path) -> Path:
    """``<run_dir>/cache``: where the app caches a run's embeddings and projections."""
    return Path(run_dir) / CACHE_DIR_NAME


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    out = [("lsx", __version__)]
    for name in LIBRARIES:  # importlib.metadata: never imports umap
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


def library_versions() -> dict[str, str]:
    """Versions of lsx, numpy, torch, scikit-learn and umap-learn in this process."""
    return dict(_installed_versions())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _key(request: Manifest) -> str:
    return _sha256(json.dumps(request, sort_keys=True).encode())[:32]


def entry_paths(cache_dir: Path, request: Manifest, prefix: str | None = None) -> tuple[Path, Path]:
    """(array file, manifest file) of a request: ``<prefix or kind>-<key>.<suffix>``."""
    stem = f"{prefix or request['kind']}-{_key(request)}"
    return cache_dir / (stem + _ARRAY_SUFFIX[request["kind"]]), cache_dir / (stem + ".json")


# ------------------------------------------------------------------------------ reading


def read_manifest(path: Path) -> tuple[Manifest | None, str | None]:
    """(manifest, None) or (None, why it is unreadable)."""
    try:
        manifest = read_json_capped(path, MAX_MANIFEST_BYTES, "cache manifest")
    except LsxError as err:  # missing, not a regular file, too large, not JSON, too deep
        return None, f"manifest {path.name} is unreadable ({err})"
    if not isinstance(manifest, dict):
        return None, f"manifest {path.name} is not a JSON object"
    return manifest, None


def describe_diff(manifest: Manifest, request: Manifest, fields: tuple[str, ...]) -> str | None:
    """``"checkpoint_sha 'a' (now 'b'); torch 2.12.0 (now 2.13.0)"``, or None if all match."""
    diffs = []
    for name in fields:
        old, new = manifest.get(name), request[name]
        if old == new:
            continue
        if name == "versions" and isinstance(old, dict):
            diffs += [
                f"{lib} {old.get(lib)} (now {v})" for lib, v in new.items() if old.get(lib) != v
            ]
            diffs += [f"{k} {old[k]} (now absent)" for k in sorted(set(old) - set(new))]
        else:
            diffs.append(f"{name} {old!r} (now {new!r})")
    return "; ".join(diffs) or None


def load_arrays(
    array_path: Path, manifest: Manifest, shapes: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """The entry's float32 arrays of the given shapes, or (None, why the file is stale)."""
    try:
        data = array_path.read_bytes()
    except OSError as err:
        return None, f"array file {array_path.name} is missing or unreadable ({err.strerror})"
    if _sha256(data) != manifest.get("array_sha256"):
        return None, f"array file {array_path.name} is corrupt or truncated (sha256 mismatch)"
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"coords": loaded}
        else:
            with loaded:
                arrays = {name: loaded[name] for name in loaded.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        return None, f"array file {array_path.name} cannot be parsed ({err})"
    for name, shape in shapes.items():
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype != np.float32 or not np.isfinite(a).all():
            got = "missing" if a is None else f"{a.dtype} {a.shape}"
            return None, f"array {name!r} in {array_path.name} is {got}; expected float32 {shape}"
    return arrays, None


def _sibling_reason(cache_dir: Path, request: Manifest) -> str | None:
    """Why a miss is a recomputation: an entry for the same slot from another source."""
    if not cache_dir.is_dir():
        return None
    for path in sorted(cache_dir.glob(f"{request['kind']}-*.json")):
        manifest, _ = read_manifest(path)
        if manifest is None or any(manifest.get(f) != request.get(f) for f in _SLOT_FIELDS):
            continue
        diff = describe_diff(manifest, request, _SOURCE_FIELDS)
        if diff:
            return f"the cached {request['kind']} {path.name} was made with {diff}"
    return None


def _lookup(
    cache_dir: Path, request: Manifest, shapes: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, np.ndarray] | None, Manifest | None, str | None]:
    """(arrays, manifest, None) on a hit; (None, None, why stale or None) on a miss."""
    array_path, manifest_path = entry_paths(cache_dir, request)
    if not manifest_path.exists():
        reason = f"manifest {manifest_path.name} is missing" if array_path.exists() else None
        return None, None, reason or _sibling_reason(cache_dir, request)
    manifest, reason = read_manifest(manifest_path)
    if manifest is not None:
        diff = describe_diff(manifest, request, tuple(request))
        reason = f"manifest {manifest_path.name} differs: {diff}" if diff else None
    if manifest is None or reason:
        return None, None, reason
    arrays, reason = load_arrays(array_path, manifest, shapes)
    return (arrays, manifest, None) if arrays is not None else (None, None, reason)


# ------------------------------------------------------------------------------ writing


def write_entry(
    cache_dir: Path,
    request: Manifest,
    arrays: Mapping[str, np.ndarray],
    seconds: float,
    stale_reason: str | None,
    *,
    prefix: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Write the entry (array file, then manifest) and return the manifest the caller sees."""
    buf = io.BytesIO()
    if _ARRAY_SUFFIX[request["kind"]] == ".npy":
        np.save(buf, arrays["coords"], allow_pickle=False)
    else:
        np.savez(buf, **arrays)
    payload = buf.getvalue()
    manifest = {
        **request,
        **(extra or {}),  # e.g. how it was computed; not part of the key
        "key": _key(request),
        "array_sha256": _sha256(payload),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "compute_seconds": round(seconds, 4),
    }
    array_path, manifest_path = entry_paths(cache_dir, request, prefix)
    out: Manifest = {**manifest, "cached": True}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(array_path, payload)
        atomic_write_json(manifest_path, manifest)  # last: an entry without it is incomplete
    except OSError as err:  # read-only install, full disk, a file where the folder should be
        out["cached"] = False
        out["not_cached_because"] = f"cannot write to {cache_dir} ({type(err).__name__}: {err})"
    if stale_reason:
        out["recomputed_because"] = stale_reason
    return out


# ------------------------------------------------------------------------------ public API


def cached_embedding(
    cache_dir: Path,
    *,
    model: nn.Module,
    checkpoint_sha: str,
    data_hash: str,
    split: str,
    x: np.ndarray,
    batch_size: int = 512,
    device: str = "cpu",
) -> tuple[Embedding, Manifest, bool]:
    """:func:`lsx.analysis.embed` of ``x``, from the cache when a valid entry exists.

    Parameters
    ----------
    cache_dir : Path
        Cache folder, e.g. ``default_cache_dir(run_dir)``; created when needed.
    model : nn.Module
        The model of the checkpoint whose weights hash is ``checkpoint_sha``, eval, on ``device``.
    checkpoint_sha : str
        ``lsx.checkpoint.weights_sha256(run_dir)``.
    data_hash : str
        ``Dataset.content_hash``.
    split : str
        Names the rows of ``x`` within the dataset (``"test"``, or e.g. ``"train[:5000]"`` for a
        subset); with ``data_hash`` and ``len(x)`` it identifies ``x``, which is not hashed.
    x : ndarray of shape (n_samples, C, H, W)
    batch_size, device
        As in :func:`lsx.analysis.embed` (not part of the key).

    Returns
    -------
    embedding : Embedding
        ``z`` (n_samples, latent_numel) and ``recon_error`` (n_samples,), float32.
    manifest : dict
        The entry's manifest, plus ``cached`` (False when the folder is not writable, with
        ``not_cached_because``) and ``recomputed_because`` when a stale entry was replaced.
    hit : bool
        True when served from the cache.

    Raises
    ------
    DataShapeError
        ``x`` does not fit the model's input shape or holds NaN/Inf (checked before the lookup).
    """
    x = check_images(model, x)  # before the lookup: a wrong x must not hit a cached entry
    request: Manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "embedding",
        "checkpoint_sha": str(checkpoint_sha),
        "data_hash": str(data_hash),
        "split": str(split),
        "model_kind": model.config.kind,
        "latent_shape": list(model.latent_shape),
        "n_points": len(x),
        "versions": library_versions(),
    }
    d = math.prod(model.latent_shape)
    shapes = {"z": (len(x), d), "recon_error": (len(x),)}
    cache_dir = Path(cache_dir)
    arrays, manifest, stale = _lookup(cache_dir, request, shapes)
    if arrays is not None and manifest is not None:
        return Embedding(z=arrays["z"], recon_error=arrays["recon_error"]), manifest, True
    start = time.perf_counter()
    emb = embed(model, x, batch_size=batch_size, device=device)
    arrays = {"z": emb.z, "recon_error": emb.recon_error}
    return emb, write_entry(cache_dir, request, arrays, time.perf_counter() - start, stale), False


def cached_projection(
    cache_dir: Path,
    *,
    z: np.ndarray,
    checkpoint_sha: str,
    data_hash: str,
    split: str,
    method: str,
    n_components: int = 2,
    seed: int | None = 0,
    params: Mapping[str, Any] | None = None,
    compute: bool = True,
) -> tuple[np.ndarray | None, Manifest, bool]:
    """:func:`lsx.analysis.project` of ``z``, from the cache when a valid entry exists.

    Parameters
    ----------
    cache_dir, checkpoint_sha, data_hash, split
        As in :func:`cached_embedding`.
    z : ndarray of shape (n_samples, n_features)
        Its sha256 is part of the key, so another selection of points is another entry.
    method, n_components, seed, params
        As in :func:`lsx.analysis.project`; ``params`` are resolved against the method's
        defaults first, so ``{}`` and the explicit defaults share an entry.
    compute : bool
        False only looks: on a miss it returns ``(None, request manifest, False)`` without
        projecting (the app uses it to decide whether to start a background job).

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components), float32, or None
        None only on a miss with ``compute=False``.
    manifest : dict
        As in :func:`cached_embedding`.
    hit : bool

    Raises
    ------
    ConfigError
        Invalid method, parameters, n_components or seed, or parameters that are not JSON values.
    DataShapeError
        ``z`` is not a finite 2-D array with at least 3 rows.
    """
    resolved = check_request(method, n_components, seed, params)
    try:
        json.dumps(resolved)
    except TypeError as err:
        raise ConfigError(
            f"Projection parameters must be JSON values (str, number, bool, None) to be cached; "
            f"got {resolved!r}."
        ) from err
    z = check_latents(z)
    request: Manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "projection",
        "checkpoint_sha": str(checkpoint_sha),
        "data_hash": str(data_hash),
        "split": str(split),
        "method": method,
        "n_components": int(n_components),
        "seed": None if seed is None else int(seed),
        "params": resolved,
        "n_points": len(z),
        "z_sha256": _sha256(z.tobytes())[:32],
        "versions": library_versions(),
    }
    cache_dir = Path(cache_dir)
    arrays, manifest, stale = _lookup(cache_dir, request, {"coords": (len(z), n_components)})
    if arrays is not None and manifest is not None:
        return arrays["coords"], manifest, True
    if not compute:
        return None, {**request, "cached": False, "stale_reason": stale}, False
    start = time.perf_counter()
    coords = project(z, method, n_components, seed=seed, **resolved)
    seconds = time.perf_counter() - start
    return coords, write_entry(cache_dir, request, {"coords": coords}, seconds, stale), False


def _stale_reason(manifest_path: Path, checkpoint_sha: str, data_hash: str) -> str | None:
    manifest, reason = read_manifest(manifest_path)
    if manifest is None:
        return reason
    if (
        manifest.get("format_version") != FORMAT_VERSION
        or manifest.get("kind") not in _ARRAY_SUFFIX
    ):
        return "unknown format_version or kind"
    current = {"checkpoint_sha": checkpoint_sha, "data_hash": data_hash}
    current["versions"] = library_versions()
    if not (manifest_path.with_suffix(_ARRAY_SUFFIX[manifest["kind"]])).is_file():
        return "array file missing"
    return describe_diff(manifest, current, _SOURCE_FIELDS)


def stale_entries(cache_dir: Path, checkpoint_sha: str, data_hash: str) -> list[Path]:
    """Files in ``cache_dir`` that no longer serve this checkpoint and dataset.

    Stale: manifests made from another checkpoint, dataset or library versions, unreadable
    manifests, the array files of those, array files without a manifest, and ``.tmp-*`` files
    older than :data:`TMP_MAX_AGE_S` (left by a crashed write). Other files are ignored.

    Returns
    -------
    paths : list of Path, sorted
    """
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    stale: set[Path] = set()
    now = time.time()
    for path in cache_dir.iterdir():
        if not path.is_file():
            continue
        if path.name.startswith(".tmp-"):
            if now - path.stat().st_mtime > TMP_MAX_AGE_S:
                stale.add(path)
        elif path.suffix == ".json" and _stale_reason(path, checkpoint_sha, data_hash):
            stale.add(path)
            stale.update(p for s in (".npy", ".npz") if (p := path.with_suffix(s)).is_file())
        elif path.suffix in (".npy", ".npz") and not path.with_suffix(".json").is_file():
            stale.add(path)
    return sorted(stale)


def clear_stale(cache_dir: Path, checkpoint_sha: str, data_hash: str) -> list[Path]:
    """Delete :func:`stale_entries` and return what was deleted (OSError propagates)."""
    removed = []
    for path in stale_entries(cache_dir, checkpoint_sha, data_hash):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
