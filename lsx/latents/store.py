"""Latent stores: a run's encoding of a whole image source, streamed to memory-mapped ``.npy``.

A store is the folder ``<run_dir>/stores/<slug>/`` holding

- ``z.npy`` float32 (n, d): ``model.encode`` of each row, flattened (as :func:`lsx.analysis.embed`);
- ``recon_error.npy`` float32 (n,): per-row MSE of ``decode(encode(x))``;
- ``labels-<attr>.npy`` int64 (n,) per label attribute, and ``rows.npy`` int64 (n,): the row of
  each entry in the source;
- ``manifest.json``: what made it (checkpoint weights sha, model kind and latent shape, the
  source's ``describe()`` with its content hash and label names, split) and how far it got
  (``rows_done``, ``complete``), plus batch size, number of processes (``world_size``), seconds,
  rows/s, library versions and dates.

:func:`encode_to_store` reads the source in batches, encodes each under
:func:`torch.inference_mode` and writes it into the ``.npy`` files through
``np.lib.format.open_memmap``; every few batches it flushes the maps and then atomically records
its progress and the manifest's ``rows_done``, so memory stays bounded by the batch size and a
killed or interrupted encode resumes where it stopped. The maps are reopened at each flush so the
pages already written leave the process's resident set. A store made from another checkpoint or
another source (different hash, shape, split or row count) is stale: it is never served, it is
recomputed from zero and the returned store says why (``recomputed_because``).
:func:`open_store` only reads: it refuses incomplete, stale or corrupt stores with an error that
says what to do. The arrays it returns are read-only memory maps (``mmap_mode="r"``).

While an encode runs, its progress is in the store's ``.encode/`` folder
(:mod:`lsx.latents.progress`) and the manifest says ``complete: false`` with the rows done so
far; under ``torchrun`` several processes fill one store and rank 0 writes the complete manifest
last, after every process finished (:mod:`lsx.latents.writer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lsx.data.lazy import SPLITS
from lsx.errors import ConfigError, DatasetError, LsxError
from lsx.files import read_json_capped
from lsx.paths import run_cache_dir

STORES_DIR = "stores"
MANIFEST_NAME = "manifest.json"
# A manifest is a few KB plus the source's label names (a 100,000-class vocabulary of ~20-byte
# names is ~2 MB); a larger file is not one lsx wrote and is refused before it is parsed.
MAX_MANIFEST_BYTES = 16_000_000
FORMAT_VERSION = 1
# Fields that identify what a store holds; any difference makes it stale.
_IDENTITY = ("format_version", "checkpoint_sha", "model_kind", "latent_shape", "source", "split")
_IDENTITY += ("n", "dim")

Progress = Callable[[int, int], None]  # (rows_done, n) after each batch


class StaleStoreError(LsxError):
    """A latent store is incomplete or was made from another checkpoint or source."""


@dataclass(frozen=True, eq=False)
class LatentStore:
    """An opened, complete latent store; the arrays are read-only memory maps.

    Attributes
    ----------
    path : Path
        The store folder.
    manifest : dict
        ``manifest.json``.
    z : ndarray of shape (n, dim), float32 (memmap)
    recon_error : ndarray of shape (n,), float32 (memmap)
    labels : dict attribute -> ndarray of shape (n,), int64 (memmap)
    label_names : dict attribute -> tuple of class names
    rows : ndarray of shape (n,), int64 (memmap)
        Row of each entry in the source.
    recomputed_because : str or None
        Set by :func:`encode_to_store` when an existing store was stale and was recomputed.
    """

    path: Path
    manifest: dict[str, Any]
    z: np.ndarray
    recon_error: np.ndarray
    labels: dict[str, np.ndarray]
    label_names: dict[str, tuple[str, ...]]
    rows: np.ndarray
    recomputed_because: str | None = None

    @property
    def n(self) -> int:
        return int(self.manifest["n"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def spec(self) -> str:
        return str(self.manifest["source"]["spec"])

    @property
    def source_hash(self) -> str:
        return str(self.manifest["source"]["hash"])

    @property
    def checkpoint_sha(self) -> str:
        return str(self.manifest["checkpoint_sha"])

    @property
    def split(self) -> str:
        return str(self.manifest["split"])

    @property
    def primary(self) -> str:
        """The source's primary label attribute (the manifest's ``primary``; stores written
        before it was recorded: the first attribute of ``label_names``)."""
        named = self.manifest.get("primary")
        return named if named in self.label_names else next(iter(self.label_names))

    @property
    def y(self) -> np.ndarray:
        """Primary labels, shape (n,)."""
        return self.labels[self.primary]


def stores_root(run_dir: Path | str) -> Path:
    """The folder of a run's stores: ``<run_dir>/stores``, or for a shipped demo run inside the
    installed package a folder in the user cache (nothing is written into the package)."""
    return run_cache_dir(Path(run_dir), STORES_DIR)


def store_dir_for(run_dir: Path, spec: str, split: str = "all") -> Path:
    """``<run_dir>/stores/<slug>``: a readable slug of spec and split plus a hash of the spec."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    kind, _, rest = spec.partition(":")
    # "npy:/very/long/path/big.npy" -> "npy-big.npy": the name, not the path (the hash tells
    # apart two files of one name; the manifest keeps the whole spec)
    name = f"{kind}-{Path(rest.rstrip('/')).name}" if rest else spec
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "data"
    digest = _short_hash(spec)
    return stores_root(run_dir) / f"{readable}-{split}-{digest}"


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


# ------------------------------------------------------------------------------ files


def _array_specs(manifest: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """File name -> (shape, dtype) that a store with this manifest must hold."""
    n, dim = int(manifest["n"]), int(manifest["dim"])
    out = {
        "z.npy": ((n, dim), np.dtype(np.float32)),
        "recon_error.npy": ((n,), np.dtype(np.float32)),
        "rows.npy": ((n,), np.dtype(np.int64)),
    }
    for attr in manifest["source"]["label_names"]:
        out[f"labels-{attr}.npy"] = ((n,), np.dtype(np.int64))
    return out


def _open_array(path: Path, shape: tuple[int, ...], dtype: np.dtype, mode: str) -> np.ndarray:
    """Memory-map one store file; DatasetError naming the file if missing, corrupt or mis-shaped."""
    if not path.is_file():
        raise DatasetError(f"{path.name} is missing from {path.parent}")
    try:
        a = np.load(path, mmap_mode=mode, allow_pickle=False)  # type: ignore[call-overload]
    except (ValueError, OSError, EOFError) as err:  # bad header, truncated file, pickled data
        raise DatasetError(f"{path.name} in {path.parent} is corrupt ({err})") from err
    if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else "not an array"
        raise DatasetError(
            f"{path.name} in {path.parent} is {got}; the manifest needs {dtype} {shape}"
        )
    return a


def _read_manifest(store_dir: Path) -> dict[str, Any]:
    path = Path(store_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(
            f"{store_dir} holds no latent store ({MANIFEST_NAME} is missing). Make one with "
            "`python -m lsx encode --run RUN --data SPEC`."
        )
    try:
        manifest = read_json_capped(path, MAX_MANIFEST_BYTES, MANIFEST_NAME, DatasetError)
    except DatasetError as err:  # missing, not a regular file, too large, not JSON, too deep
        raise DatasetError(
            f"{path} is unreadable: {err} Run `python -m lsx encode` again: it recomputes the "
            "store."
        ) from err
    needed = (*_IDENTITY, "rows_done", "complete")
    if not isinstance(manifest, dict) or any(k not in manifest for k in needed):
        raise DatasetError(
            f"{path} is not a latent-store manifest (fields missing). Run `python -m lsx encode` "
            "again: it recomputes the store."
        )
    if not isinstance(manifest.get("source"), dict) or "label_names" not in manifest["source"]:
        raise DatasetError(f"{path} has no source description; run `python -m lsx encode` again.")
    return manifest


def open_store(
    store_dir: Path, *, checkpoint_sha: str | None = None, source_hash: str | None = None
) -> LatentStore:
    """Open a complete latent store read-only.

    Parameters
    ----------
    store_dir : Path
        A store folder, e.g. from :func:`store_dir_for` or :func:`list_stores`.
    checkpoint_sha : str or None
        ``lsx.checkpoint.weights_sha256(run_dir)``; when given, a store made from other weights
        is refused as stale.
    source_hash : str or None
        ``ImageSource.content_hash``; when given, a store of other data is refused as stale.

    Returns
    -------
    LatentStore

    Raises
    ------
    StaleStoreError
        The store is incomplete (an encode was interrupted), of another format version, or
        made from another checkpoint or source.
    DatasetError
        No store there, an unreadable manifest, or a missing, truncated or mis-shaped array file.
    """
    store_dir = Path(store_dir)
    manifest = _read_manifest(store_dir)
    redo = "Run `python -m lsx encode` for this run and data again to recompute it."
    if manifest["format_version"] != FORMAT_VERSION:
        raise StaleStoreError(
            f"{store_dir} has store format {manifest['format_version']!r}; this lsx reads "
            f"{FORMAT_VERSION}. {redo}"
        )
    if not manifest["complete"]:
        raise StaleStoreError(
            f"{store_dir} is incomplete: {manifest['rows_done']:,} of {manifest['n']:,} rows "
            "encoded (interrupted?). Run `python -m lsx encode` with the same run and data to "
            "resume it."
        )
    for name, want in (("checkpoint_sha", checkpoint_sha), ("hash", source_hash)):
        have = (
            manifest["checkpoint_sha"] if name == "checkpoint_sha" else manifest["source"]["hash"]
        )
        if want is not None and have != want:
            what = "checkpoint weights" if name == "checkpoint_sha" else "source data"
            raise StaleStoreError(
                f"{store_dir} is stale: it was made from other {what} ({name} {have!r}, now "
                f"{want!r}). {redo}"
            )
    arrays = {}
    try:
        for name, (shape, dtype) in _array_specs(manifest).items():
            arrays[name] = _open_array(store_dir / name, shape, dtype, "r")
    except DatasetError as err:
        raise DatasetError(f"{err}. {redo}") from err
    label_names = {a: tuple(v) for a, v in manifest["source"]["label_names"].items()}
    return LatentStore(
        path=store_dir,
        manifest=manifest,
        z=arrays["z.npy"],
        recon_error=arrays["recon_error.npy"],
        labels={a: arrays[f"labels-{a}.npy"] for a in label_names},
        label_names=label_names,
        rows=arrays["rows.npy"],
    )


def stores_stamp(run_dir: Path | str) -> tuple[tuple[str, int], ...]:
    """mtimes of the run's weights and of every store manifest: when it changes, a cached list
    of the run's stores is out of date (the app's pickers key their caches by it)."""
    out = []
    for path in [Path(run_dir) / "model.safetensors", *stores_root(run_dir).glob("*/*.json")]:
        try:
            out.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(out))


def list_stores(run_dir: Path) -> list[LatentStore | tuple[Path, str]]:
    """The stores of a run: an opened :class:`LatentStore` for each usable one, else (path, why).

    Usable = complete and made from the run's current weights (the source's hash is not checked
    here: that would need opening the data).
    """
    from lsx.checkpoint import weights_sha256

    root = stores_root(run_dir)
    if not root.is_dir():
        return []
    try:
        sha: str | None = weights_sha256(run_dir)
    except LsxError:
        sha = None
    out: list[LatentStore | tuple[Path, str]] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            out.append(open_store(entry, checkpoint_sha=sha))
        except LsxError as err:
            out.append((entry, str(err)))
    return out


# ------------------------------------------------------------------------------ encoding


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
