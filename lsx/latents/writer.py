"""Encoding a whole image source into a latent store (:func:`encode_to_store`, ``lsx encode``).

Streams batches through ``model.encode`` into the store's memory-mapped ``.npy`` files, flushing
and atomically rewriting the manifest every few batches, so memory stays bounded and an
interrupted encode resumes where the manifest says. One writer per store
(:class:`lsx.files.FolderLock`). The store layout is described in :mod:`lsx.latents.store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.data.lazy import SPLITS, ImageSource
from lsx.errors import ConfigError, DatasetError, DataShapeError
from lsx.files import LOCK_NAME, FolderLock, atomic_write_json
from lsx.latents.store import (
    _IDENTITY,
    FORMAT_VERSION,
    MANIFEST_NAME,
    LatentStore,
    Progress,
    _array_specs,
    _now,
    _open_array,
    _read_manifest,
    open_store,
)

FLUSH_EVERY_BATCHES = 8  # rows_done is saved at least this often ...
FLUSH_EVERY_S = 10.0  # ... and at least this often (seconds), whichever comes first
_ENCODE_LOCKED = "Another `lsx encode` is writing {folder} (process {pid}); wait for it to finish."


def _identity(model: nn.Module, source: ImageSource, checkpoint_sha: str, split: str, n: int):
    return {
        "format_version": FORMAT_VERSION,
        "checkpoint_sha": str(checkpoint_sha),
        "model_kind": model.config.kind,
        "latent_shape": list(model.latent_shape),
        "source": {
            **source.describe(),
            "label_names": {a: list(v) for a, v in source.label_names.items()},
        },
        "split": split,
        "n": int(n),
        "dim": int(math.prod(model.latent_shape)),
    }


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why an existing manifest does not describe what is asked now, or None."""
    parts = []
    for key in _IDENTITY:
        if old.get(key) == new[key]:
            continue
        if key == "source" and isinstance(old.get(key), dict):
            parts += [
                f"source {k} {old[key].get(k)!r} (now {v!r})"
                for k, v in new[key].items()
                if old[key].get(k) != v and k != "label_names"
            ] or ["source label names differ"]
        else:
            parts.append(f"{key} {old.get(key)!r} (now {new[key]!r})")
    return "; ".join(parts) or None


def _resume_point(store_dir: Path, identity: dict[str, Any]) -> tuple[int, int | None, str | None]:
    """(rows_done, batch_size of the earlier encode, why it must restart) for an existing store."""
    if not (store_dir / MANIFEST_NAME).exists():
        return 0, None, None
    try:
        old = _read_manifest(store_dir)
    except DatasetError as err:
        return 0, None, str(err).split(". Run")[0]
    diff = _diff(old, identity)
    if diff:
        return 0, None, f"the store was made with {diff}"
    try:
        for name, (shape, dtype) in _array_specs(old).items():
            _open_array(store_dir / name, shape, dtype, "r")
    except DatasetError as err:
        return 0, None, str(err)
    done = old["rows_done"]
    if not isinstance(done, int) or not 0 <= done <= identity["n"]:
        return 0, None, f"its manifest has an invalid rows_done {done!r}"
    batch = old.get("batch_size")
    return done, batch if isinstance(batch, int) and batch > 0 else None, None


def _fresh(store_dir: Path, identity: dict[str, Any], source: ImageSource, rows: np.ndarray):
    """Delete the old files and create empty arrays (labels and rows filled in at once)."""
    for path in store_dir.iterdir():
        if path.name == LOCK_NAME:
            continue
        if path.is_dir():
            shutil.rmtree(path)  # e.g. projections of the old store
        else:
            path.unlink()
    for name, (shape, dtype) in _array_specs(identity).items():
        a = np.lib.format.open_memmap(store_dir / name, mode="w+", dtype=dtype, shape=shape)
        if name == "rows.npy":
            a[:] = rows
        elif name.startswith("labels-"):
            a[:] = source.labels[name[len("labels-") : -len(".npy")]][rows]
        a.flush()
        del a


class _BatchReader(torch.utils.data.Dataset):
    """Batch ``i`` of ``rows`` read from ``source``, so DataLoader workers decode whole batches."""

    def __init__(self, source: ImageSource, rows: np.ndarray, batch_size: int) -> None:
        self.source, self.rows, self.batch_size = source, rows, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.source.read(self.rows[i * self.batch_size : (i + 1) * self.batch_size])


def _batches(
    source: ImageSource, rows: np.ndarray, batch_size: int, workers: int
) -> Iterator[np.ndarray]:
    reader = _BatchReader(source, rows, batch_size)
    if workers <= 0:
        yield from (reader[i] for i in range(len(reader)))
        return
    loader = torch.utils.data.DataLoader(
        reader,
        batch_size=None,  # each item already is a batch
        num_workers=workers,
        collate_fn=_as_is,  # keep the numpy batch as it is
        prefetch_factor=2,
        persistent_workers=False,
    )
    yield from loader


def _as_is(batch: np.ndarray) -> np.ndarray:
    return batch


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}; got {value!r}.")
    return int(value)


def encode_to_store(
    model: nn.Module,
    source: ImageSource,
    store_dir: Path,
    *,
    checkpoint_sha: str,
    split: str = "all",
    batch_size: int = 1024,
    device: str = "cpu",
    workers: int = 0,
    progress: Progress | None = None,
) -> LatentStore:
    """Encode ``source`` into a latent store, streaming, resuming an interrupted encode.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode on ``device`` (from :func:`lsx.checkpoint.load_checkpoint`).
    source : ImageSource
        From :func:`lsx.data.lazy.open_source`; its ``input_shape`` must be the model's.
    store_dir : Path
        The store folder (:func:`store_dir_for`); created when needed.
    checkpoint_sha : str
        ``lsx.checkpoint.weights_sha256(run_dir)``: identifies the weights.
    split : {"all", "train", "test"}
        Which rows of the source.
    batch_size : int
        Rows per batch; memory is bounded by it. A resumed encode keeps the batch size it
        started with, so its batches (and results) are the same as an uninterrupted run's.
    device : str
        Where batches are sent (the model must be there).
    workers : int
        DataLoader worker processes that read (decode) batches; 0 reads in this process.
    progress : callable (rows_done, n) or None
        Called after each batch.

    Returns
    -------
    LatentStore
        Opened read-only; ``recomputed_because`` says why an existing store was not reused.

    Raises
    ------
    DataShapeError
        The source's images do not have the model's input shape, or hold NaN/Inf.
    ConfigError
        Bad split, batch_size or workers, or another encode is writing the same store.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    batch_size = _check_int("batch_size", batch_size, 1)
    workers = _check_int("workers", workers, 0)
    expected = tuple(model.config.input_shape)
    if tuple(source.input_shape) != expected:
        c, h, w = expected
        raise DataShapeError(
            f"{source.spec!r} has images of shape {tuple(source.input_shape)}; the "
            f"{model.config.kind} checkpoint needs ({c}, {h}, {w}). Use the data it was trained "
            f"on, or pass --image-size {h} (a folder or .npy of {c}-channel images)."
        )
    rows = source.split_indices(split)
    if len(rows) == 0:
        raise DatasetError(f"The {split!r} split of {source.spec!r} is empty; choose another.")
    identity = _identity(model, source, checkpoint_sha, split, len(rows))
    store_dir = Path(store_dir)
    from lsx.analysis.embedding import embed
    from lsx.cache import library_versions  # lazy: lsx.cache imports the projection stack

    with FolderLock(store_dir, _ENCODE_LOCKED):
        done, old_batch, stale = _resume_point(store_dir, identity)
        manifest_path = store_dir / MANIFEST_NAME
        if not stale and done == len(rows) and _read_manifest(store_dir)["complete"]:
            return open_store(store_dir, checkpoint_sha=str(checkpoint_sha))  # nothing to do
        if done == 0 or stale:
            _fresh(store_dir, identity, source, rows)
            done, seconds, created = 0, 0.0, _now()
        else:
            old = _read_manifest(store_dir)  # size-capped and checked, as every manifest read
            batch_size = old_batch or batch_size
            seconds, created = float(old.get("seconds", 0.0)), old.get("created", _now())
        manifest = {
            **identity,
            "rows_done": done,
            "complete": done == len(rows),
            "batch_size": batch_size,
            "seconds": round(seconds, 3),
            "rows_per_s": None,
            "versions": library_versions(),
            "created": created,
            "updated": _now(),
        }
        if stale:
            manifest["recomputed_because"] = stale
        atomic_write_json(manifest_path, manifest)
        specs = _array_specs(identity)
        maps: dict[str, np.ndarray] = {}

        def reopen() -> None:
            # A fresh map per window: pages written before leave this process's resident set.
            maps.clear()
            for name in ("z.npy", "recon_error.npy"):
                maps[name] = _open_array(store_dir / name, *specs[name], "r+")

        def save(rows_done: int, elapsed: float, *, complete: bool = False) -> None:
            for a in maps.values():
                a.flush()  # data first: rows_done never counts rows not on disk
            total = seconds + elapsed
            manifest.update(
                rows_done=rows_done,
                complete=complete,
                seconds=round(total, 3),
                rows_per_s=round(rows_done / total, 1) if total > 0 and complete else None,
                updated=_now(),
            )
            atomic_write_json(manifest_path, manifest)

        reopen()
        start = time.perf_counter()
        last_save, batches_since = start, 0
        position = done
        try:
            for xb in _batches(source, rows[done:], batch_size, workers):
                emb = embed(model, xb, batch_size=len(xb), device=device)
                end = position + len(xb)
                maps["z.npy"][position:end] = emb.z
                maps["recon_error.npy"][position:end] = emb.recon_error
                position = end
                batches_since += 1
                now = time.perf_counter()
                if batches_since >= FLUSH_EVERY_BATCHES or now - last_save >= FLUSH_EVERY_S:
                    save(position, now - start)
                    reopen()
                    last_save, batches_since = now, 0
                if progress is not None:
                    progress(position, len(rows))
        except BaseException:  # Ctrl-C, a bad file, ...: keep what was written, then re-raise
            with contextlib.suppress(Exception):
                save(position, time.perf_counter() - start)
            raise
        save(position, time.perf_counter() - start, complete=True)
        maps.clear()
    store = open_store(store_dir, checkpoint_sha=str(checkpoint_sha))
    return dataclasses.replace(store, recomputed_because=stale)
