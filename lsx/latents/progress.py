"""Which rows of a latent store are encoded: the resumable progress of ``lsx encode``, in one
process or several (``torchrun``), and how the rows still to do are shared among processes.

Progress lives in the store's ``.encode/`` folder while an encode is under way:

- ``part-<start>-<end>.json`` ``{"start", "end", "done"}``: one process's piece of store positions
  ``[start, end)``, encoded up to ``done`` (rewritten atomically after each flush of the data);
- ``done.json`` ``{"ranges": [[a, b], ...]}``: what earlier attempts finished, merged.

Every piece starts on the batch grid (position ``k * batch_size``) and is cut into batches of that
size, so any number of processes, over any number of attempts, encode the same batches as one
uninterrupted process: the store is the same bit for bit. A store without ``.encode/`` (written by
an older lsx) recorded a prefix instead: the first ``rows_done`` rows of its manifest.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from lsx.errors import LsxError
from lsx.files import atomic_write_json, read_json_capped

PROGRESS_DIR = ".encode"
DONE_NAME = "done.json"
_MAX_BYTES = 16_000_000  # a few numbers per range; anything larger is not ours

Range = tuple[int, int]


def merge(ranges: list[Range]) -> list[Range]:
    """The sorted union of half-open ranges, empty ones dropped."""
    out: list[Range] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def rows_in(ranges: list[Range]) -> int:
    return sum(b - a for a, b in ranges)


def _ranges_of(path: Path, n: int) -> list[Range]:
    """The done ranges one progress file records; none if it is unreadable or out of bounds
    (those rows are then encoded again: never counted without proof)."""
    try:
        data = read_json_capped(path, _MAX_BYTES, path.name, LsxError)
    except LsxError:
        return []
    if not isinstance(data, dict):
        return []
    if path.name == DONE_NAME:
        pairs = data.get("ranges")
    else:
        pairs = [[data.get("start"), data.get("done")]]
    if not isinstance(pairs, list):
        return []
    out = []
    for pair in pairs:
        ok = isinstance(pair, list) and len(pair) == 2
        if ok and all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            if 0 <= pair[0] <= pair[1] <= n:
                out.append((pair[0], pair[1]))
    return out


def read_done(store_dir: Path, n: int, prefix: int) -> list[Range]:
    """The encoded ranges of a store of ``n`` rows: from ``.encode/`` when it exists, else the
    manifest's ``rows_done`` (``prefix``) of an encode by an older lsx."""
    folder = Path(store_dir) / PROGRESS_DIR
    if not folder.is_dir():
        return merge([(0, min(max(prefix, 0), n))])
    ranges: list[Range] = []
    for path in [folder / DONE_NAME, *sorted(folder.glob("part-*.json"))]:
        if path.is_file():
            ranges += _ranges_of(path, n)
    return merge(ranges)


def consolidate(store_dir: Path, done: list[Range]) -> None:
    """Record ``done`` in ``done.json``, then drop the part files it covers (a crash in
    between leaves both, which merge to the same ranges)."""
    folder = Path(store_dir) / PROGRESS_DIR
    folder.mkdir(exist_ok=True)
    atomic_write_json(folder / DONE_NAME, {"ranges": [list(r) for r in merge(done)]})
    for path in folder.glob("part-*.json"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def save_part(store_dir: Path, start: int, end: int, done: int) -> None:
    """One process's progress on its piece ``[start, end)``: encoded up to ``done``."""
    path = Path(store_dir) / PROGRESS_DIR / f"part-{start}-{end}.json"
    atomic_write_json(path, {"start": start, "end": end, "done": done})


def share(done: list[Range], n: int, batch_size: int, world_size: int) -> list[list[Range]]:
    """The pieces each of ``world_size`` processes encodes: the batches of the grid that
    ``done`` does not cover, in order, cut into ``world_size`` contiguous runs of (nearly) equal
    numbers of batches. A fresh store gives each process one contiguous range of rows."""
    n_batches = math.ceil(n / batch_size)
    todo = np.ones(n_batches, dtype=bool)
    for a, b in merge(done):
        first = -(-a // batch_size)  # a batch counts as done only when wholly inside
        last = n_batches if b >= n else b // batch_size
        todo[first:last] = False
    pieces: list[list[Range]] = []
    for batches in np.array_split(np.flatnonzero(todo), world_size):
        runs = np.split(batches, np.flatnonzero(np.diff(batches) != 1) + 1) if len(batches) else []
        pieces.append(
            [(int(r[0]) * batch_size, min((int(r[-1]) + 1) * batch_size, n)) for r in runs]
        )
    return pieces
