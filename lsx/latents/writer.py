"""Encoding a whole image source into a latent store (:func:`encode_to_store`, ``lsx encode``).

Streams batches through ``model.encode`` into the store's memory-mapped ``.npy`` files, flushing
every few batches and then recording how far it got (:mod:`lsx.latents.progress`), so memory stays
bounded and an interrupted encode resumes where it stopped. The store layout is described in
:mod:`lsx.latents.store`.

Several processes (``torchrun ... -m lsx encode``; ``dist`` is their
:class:`lsx.distributed.DistContext`) share one store: rank 0 alone holds the store's
:class:`lsx.files.FolderLock`, checks what is already done, creates the arrays and shares out the
rest before any rank writes; each rank writes only its rows, in whole batches of the one batch
grid, and keeps its own progress file; rank 0 writes the complete manifest last, after every rank
finished. A store is never served until then (:func:`lsx.latents.store.open_store`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from lsx.data.lazy import SPLITS, ImageSource
from lsx.errors import ConfigError, DatasetError, DataShapeError, LsxError
from lsx.files import LOCK_NAME, FolderLock, atomic_write_json
from lsx.latents import progress as prog
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
from lsx.tags import TAGS_NAME

FLUSH_EVERY_BATCHES = 8  # progress is saved at least this often ...
FLUSH_EVERY_S = 10.0  # ... and at least this often (seconds), whichever comes first
_ENCODE_LOCKED = "Another `lsx encode` is writing {folder} (process {pid}); wait for it to finish."


class Collectives(Protocol):
    """What :func:`encode_to_store` needs of the processes it runs in
    (:class:`lsx.distributed.DistContext` has it)."""

    rank: int
    world_size: int

    def broadcast_object(self, obj: Any) -> Any: ...
    def gather_objects(self, obj: Any) -> list[Any]: ...
    def barrier(self) -> None: ...
    def maybe_fault(self, global_step: int) -> None: ...


class _Alone:
    """One process: collectives that return their input."""

    rank, world_size = 0, 1

    def broadcast_object(self, obj: Any) -> Any:
        return obj

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        pass

    def maybe_fault(self, global_step: int) -> None:
        pass


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


def _diff(old: dict[str, Any], new: dict[str, Any], now: str = "now") -> str | None:
    """Why an existing manifest does not describe what is asked now, or None."""
    parts = []
    for key in new:
        if old.get(key) == new[key]:
            continue
        if key == "source" and isinstance(old.get(key), dict):
            parts += [
                f"source {k} {old[key].get(k)!r} ({now} {v!r})"
                for k, v in new[key].items()
                if old[key].get(k) != v and k != "label_names"
            ] or ["source label names differ"]
        else:
            parts.append(f"{key} {old.get(key)!r} ({now} {new[key]!r})")
    return "; ".join(parts) or None


def _check_agreement(dist: Collectives, mine: dict[str, Any]) -> None:
    """Raise ConfigError on every rank unless all ranks encode the same weights, data, split
    and batches into the same store (each rank hashed its own files)."""
    everyone = dist.gather_objects(mine)
    for rank, theirs in enumerate(everyone[1:], start=1):
        diff = _diff(everyone[0], theirs, now=f"rank {rank}:")
        if diff:
            raise ConfigError(
                f"The {len(everyone)} processes disagree on what to encode: rank 0 has {diff}. "
                "Every process must see the same run weights and data files with the same "
                "arguments; start them with one torchrun command on one copy of the files."
            )


def _resume_point(store_dir: Path, identity: dict[str, Any]):
    """(done ranges, batch_size of the earlier encode, why it must restart) for a store."""
    if not (store_dir / MANIFEST_NAME).exists():
        return [], None, None
    try:
        old = _read_manifest(store_dir)
    except DatasetError as err:
        return [], None, str(err).split(". Run")[0]
    diff = _diff({k: old.get(k) for k in _IDENTITY}, {k: identity[k] for k in _IDENTITY})
    if diff:
        return [], None, f"the store was made with {diff}"
    try:
        for name, (shape, dtype) in _array_specs(old).items():
            _open_array(store_dir / name, shape, dtype, "r")
    except DatasetError as err:
        return [], None, str(err)
    done = old["rows_done"]
    if not isinstance(done, int) or not 0 <= done <= identity["n"]:
        return [], None, f"its manifest has an invalid rows_done {done!r}"
    batch = old.get("batch_size")
    ranges = prog.read_done(store_dir, identity["n"], done)
    return ranges, batch if isinstance(batch, int) and batch > 0 else None, None


def _fresh(store_dir: Path, identity: dict[str, Any], source: ImageSource, rows: np.ndarray):
    """Delete the old files and create empty arrays (labels and rows filled in at once)."""
    for path in store_dir.iterdir():
        if path.name in (LOCK_NAME, TAGS_NAME):  # the user's tags name source rows: kept
            continue
        if path.is_dir():
            shutil.rmtree(path)  # e.g. projections of the old store, its progress
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


def _prepare(store_dir, identity, source, rows, batch_size: int, world_size: int):
    """Rank 0, holding the lock: the plan every rank follows (arrays created, progress merged,
    a manifest saying incomplete written) or ``{"complete": True}``."""
    from lsx.cache import library_versions  # lazy: lsx.cache imports the projection stack

    n = len(rows)
    done, old_batch, stale = _resume_point(store_dir, identity)
    if not stale and done == [(0, n)] and (old := _read_manifest(store_dir))["complete"]:
        if old.get("primary") != source.primary:  # written before the primary was recorded
            atomic_write_json(store_dir / MANIFEST_NAME, {**old, "primary": source.primary})
        return {"complete": True, "stale": None}
    if not done or stale:
        _fresh(store_dir, identity, source, rows)
        done, seconds, created = [], 0.0, _now()
    else:
        old = _read_manifest(store_dir)  # size-capped and checked, as every manifest read
        batch_size = old_batch or batch_size  # the batches of the first attempt, bit for bit
        seconds, created = float(old.get("seconds", 0.0)), old.get("created", _now())
    prog.consolidate(store_dir, done)  # .encode/ exists before a manifest counts by it
    manifest = {
        **identity,
        "primary": source.primary,  # the label attribute maps colour by first (label_names
        # is written with sorted keys, so its order cannot say it)
        "rows_done": prog.rows_in(done),
        "complete": False,
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "rows_per_s": None,
        "world_size": world_size,
        "versions": library_versions(),
        "created": created,
        "updated": _now(),
    }
    if stale:
        manifest["recomputed_because"] = stale
    atomic_write_json(store_dir / MANIFEST_NAME, manifest)
    pieces = prog.share(done, n, batch_size, world_size)
    return {"complete": False, "stale": stale, "manifest": manifest, "pieces": pieces}


def _on_rank0(dist: Collectives, work) -> Any:
    """``work()`` on rank 0, its result on every rank; its error raised on every rank (so no
    rank waits for a peer that gave up)."""
    if dist.rank == 0:
        try:
            result = work()
        except Exception as err:
            dist.broadcast_object({"error": str(err) or type(err).__name__})
            raise
        return dist.broadcast_object({"result": result})["result"]
    box = dist.broadcast_object(None)
    if "error" in box:
        raise LsxError(box["error"])
    return box["result"]


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


@dataclasses.dataclass
class _Job:
    """One rank's share of an encode and where it writes."""

    model: nn.Module
    source: ImageSource
    rows: np.ndarray
    store_dir: Path
    plan: dict[str, Any]
    device: str
    workers: int
    dist: Collectives
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.plan["manifest"]

    def save_manifest(self, *, complete: bool = False) -> None:
        """Rank 0: the manifest with the rows every rank recorded as done so far."""
        n = len(self.rows)
        seconds = self.plan["seconds_before"] + time.perf_counter() - self.started
        self.manifest.update(
            rows_done=prog.rows_in(prog.read_done(self.store_dir, n, 0)),
            complete=complete,
            seconds=round(seconds, 3),
            rows_per_s=round(n / seconds, 1) if complete and seconds > 0 else None,
            world_size=self.dist.world_size,
            updated=_now(),
        )
        atomic_write_json(self.store_dir / MANIFEST_NAME, self.manifest)


def _encode_share(job: _Job, progress: Progress | None) -> None:
    """Encode this rank's pieces into the maps, saving its progress every few batches."""
    from lsx.analysis.embedding import embed

    specs = _array_specs(job.manifest)
    batch_size = job.manifest["batch_size"]
    pieces = job.plan["pieces"][job.dist.rank]
    alone = job.dist.world_size == 1
    before = 0 if not alone else job.manifest["rows_done"]
    total = sum(b - a for a, b in pieces) + before
    maps: dict[str, np.ndarray] = {}

    def reopen() -> None:
        # A fresh map per window: pages written before leave this process's resident set.
        maps.clear()
        for name in ("z.npy", "recon_error.npy"):
            maps[name] = _open_array(job.store_dir / name, *specs[name], "r+")

    def save(start: int, end: int, position: int) -> None:
        for a in maps.values():
            a.flush()  # data first: progress never counts rows not on disk
        prog.save_part(job.store_dir, start, end, position)
        if job.dist.rank == 0:
            job.save_manifest()

    reopen()
    step, rows_done, last_save, since = 0, before, time.perf_counter(), 0
    for start, end in pieces:
        position = start
        try:
            for xb in _batches(job.source, job.rows[start:end], batch_size, job.workers):
                job.dist.maybe_fault(step)  # tests: LSX_FAULT_RANK / LSX_FAULT_STEP
                step += 1
                emb = embed(job.model, xb, batch_size=len(xb), device=job.device)
                maps["z.npy"][position : position + len(xb)] = emb.z
                maps["recon_error.npy"][position : position + len(xb)] = emb.recon_error
                position += len(xb)
                rows_done += len(xb)
                since += 1
                now = time.perf_counter()
                if since >= FLUSH_EVERY_BATCHES or now - last_save >= FLUSH_EVERY_S:
                    save(start, end, position)
                    reopen()
                    last_save, since = now, 0
                if progress is not None:
                    progress(rows_done, total)
        except BaseException:  # Ctrl-C, a bad file, ...: keep what was written, then re-raise
            with contextlib.suppress(Exception):
                save(start, end, position)
            raise
        save(start, end, position)
    maps.clear()


def _finish(job: _Job) -> None:
    """Rank 0, after every rank finished: check that every row is done, then the manifest."""
    n = len(job.rows)
    done = prog.read_done(job.store_dir, n, 0)
    if done != [(0, n)]:
        raise DatasetError(
            f"{job.store_dir}: {n - prog.rows_in(done):,} of {n:,} rows were not recorded as "
            "encoded. Run `python -m lsx encode` again with the same run and data to resume."
        )
    job.save_manifest(complete=True)  # last: from now on the store is served
    shutil.rmtree(job.store_dir / prog.PROGRESS_DIR, ignore_errors=True)


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
    dist: Collectives | None = None,
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
        Called after each batch; with several processes, with this process's own share
        (rows it encoded, rows it was given).
    dist : lsx.distributed.DistContext or None
        The processes of a ``torchrun`` launch, every one calling this with the same
        arguments; None (or a world size of 1) is one process.

    Returns
    -------
    LatentStore
        Opened read-only; ``recomputed_because`` says why an existing store was not reused.

    Raises
    ------
    DataShapeError
        The source's images do not have the model's input shape, or hold NaN/Inf.
    ConfigError
        Bad split, batch_size or workers, or processes that disagree on weights, data or
        arguments.
    LockedError
        Another encode is writing the same store.
    """
    dist = dist if dist is not None else _Alone()
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
    _check_agreement(dist, {**identity, "batch_size": batch_size, "store": str(store_dir)})
    with contextlib.ExitStack() as stack:

        def prepare() -> dict[str, Any]:
            stack.enter_context(FolderLock(store_dir, _ENCODE_LOCKED))  # rank 0 only, to the end
            return _prepare(store_dir, identity, source, rows, batch_size, dist.world_size)

        plan = _on_rank0(dist, prepare)  # the others wait here: the arrays exist after it
        if not plan["complete"]:
            plan["seconds_before"] = float(plan["manifest"]["seconds"])
            job = _Job(model, source, rows, store_dir, plan, device, workers, dist)
            _encode_share(job, progress)
            dist.barrier()  # every rank's rows are flushed and recorded
            _on_rank0(dist, lambda: _finish(job))
    store = open_store(store_dir, checkpoint_sha=str(checkpoint_sha))
    return dataclasses.replace(store, recomputed_because=plan["stale"])
