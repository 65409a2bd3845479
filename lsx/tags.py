"""Tags: named selections of a run's samples, kept with the run.

One small JSON file per run, ``<run_dir>/tags.json`` (never inside ``config.json``)::

    {"format_version": 1, "tags": {"blurry 7s": {"ids": [3, 17, 204]}, ...}}

Ids number the run's dataset as the app does: train samples first (``0 .. n_train - 1``), then
test samples. Every change re-reads the file, edits it and writes it atomically
(:func:`lsx.files.atomic_write_json`) under an exclusive ``flock`` of the run folder itself, so
two browser tabs (or the app and the CLI) never lose each other's tags, and a reader never sees
a torn file. The training lock (``lsx.files.FolderLock``) is a separate file and is not touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from lsx.errors import LsxError
from lsx.files import atomic_write_json, read_json_capped

TAGS_NAME = "tags.json"
FORMAT_VERSION = 1
MAX_NAME = 64  # characters of a tag name
MAX_TAGS_BYTES = 64_000_000  # a tag of 1M ids is ~8 MB of JSON
UNTAGGED = "(untagged)"
SEVERAL = "(several tags)"


class TagError(LsxError, ValueError):
    """A bad tag name, a missing tag, or an unreadable tag file."""


def check_tag_name(name: object) -> str:
    """The tag name, stripped; TagError if it is empty, too long or has path/control characters.

    Parameters
    ----------
    name : object
        What the user typed.

    Returns
    -------
    str

    Raises
    ------
    TagError
    """
    if not isinstance(name, str):
        raise TagError(f"A tag name must be text; got {type(name).__name__}.")
    text = name.strip()
    shown = text[:40] + ("..." if len(text) > 40 else "")
    if not text:
        raise TagError("The tag name is empty; type a name such as 'blurry 7s'.")
    if len(text) > MAX_NAME:
        raise TagError(
            f"The tag name is {len(text):,} characters long ({shown!r}); use at most {MAX_NAME}."
        )
    bad = sorted({c for c in text if c in "/\\" or unicodedata.category(c).startswith("C")})
    if bad or text in {".", ".."}:
        raise TagError(
            f"The tag name {shown!r} contains path or control characters {bad or [text]}; use "
            "letters, digits, spaces and punctuation other than / and \\."
        )
    return text


def tags_path(run_dir: Path | str) -> Path:
    """``<run_dir>/tags.json``."""
    return Path(run_dir) / TAGS_NAME


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Exclusive flock of the run folder itself (a directory fd): serialises read-edit-write."""
    if not run_dir.is_dir():
        raise TagError(f"The run folder {run_dir} does not exist; pick an existing run.")
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _parse(raw: object, path: Path) -> dict[str, np.ndarray]:
    if not isinstance(raw, dict) or not isinstance(raw.get("tags"), dict):
        raise TagError(
            f"{path} is not an lsx tag file (expected {{'format_version': 1, 'tags': {{...}}}}); "
            "move it away to start with no tags."
        )
    out: dict[str, np.ndarray] = {}
    for name, entry in raw["tags"].items():
        ids = entry.get("ids") if isinstance(entry, dict) else None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids
        ):
            raise TagError(f"Tag {name!r} in {path} has no list of ids >= 0; fix or move the file.")
        out[str(name)] = np.asarray(sorted(set(ids)), dtype=np.int64)
    return dict(sorted(out.items()))


def read_tags(run_dir: Path | str) -> dict[str, np.ndarray]:
    """Every tag of the run, by name (sorted): sorted unique sample ids, int64.

    Returns
    -------
    dict str -> ndarray of shape (n_ids,)
        Empty when the run has no tag file yet.

    Raises
    ------
    TagError
        The file exists but is not a valid tag file.
    """
    path = tags_path(run_dir)
    if not path.exists():
        return {}
    raw = read_json_capped(path, MAX_TAGS_BYTES, what="tag file", error=TagError)
    return _parse(raw, path)


def _write(run_dir: Path, tags: Mapping[str, np.ndarray]) -> None:
    doc = {
        "format_version": FORMAT_VERSION,
        "tags": {name: {"ids": [int(i) for i in ids]} for name, ids in tags.items()},
    }
    atomic_write_json(tags_path(run_dir), doc)


def save_tag(
    run_dir: Path | str, name: str, ids: Iterable[int], *, n_samples: int | None = None
) -> dict[str, np.ndarray]:
    """Create or replace the tag ``name`` with ``ids``.

    Parameters
    ----------
    run_dir : Path or str
    name : str
        Checked by :func:`check_tag_name`.
    ids : iterable of int
        Sample ids (train first, then test); at least one.
    n_samples : int or None
        When given, every id must be below it.

    Returns
    -------
    dict
        All tags after the change.

    Raises
    ------
    TagError
        Bad name, no ids, or an id out of range.
    """
    name = check_tag_name(name)
    arr = np.unique(np.asarray(list(ids), dtype=np.int64))
    if arr.size == 0:
        raise TagError(f"Tag {name!r} would be empty; select points on the map first.")
    if arr[0] < 0 or (n_samples is not None and arr[-1] >= n_samples):
        top = "" if n_samples is None else f" below {n_samples}"
        raise TagError(f"Tag ids must be >= 0{top}; got ids from {arr[0]} to {arr[-1]}.")
    run_dir = Path(run_dir)
    with _locked(run_dir):
        tags = read_tags(run_dir)
        tags[name] = arr
        _write(run_dir, dict(sorted(tags.items())))
    return read_tags(run_dir)


def delete_tag(run_dir: Path | str, name: str) -> dict[str, np.ndarray]:
    """Remove the tag ``name``; TagError if the run has no such tag. Returns the remaining tags."""
    run_dir = Path(run_dir)
    with _locked(run_dir):
        tags = read_tags(run_dir)
        if name not in tags:
            raise TagError(f"This run has no tag {name!r}; its tags: {sorted(tags) or 'none'}.")
        del tags[name]
        _write(run_dir, tags)
    return tags


def tag_ids(run_dir: Path | str, name: str) -> np.ndarray:
    """The ids of one tag; TagError naming the run's tags if it does not exist."""
    tags = read_tags(run_dir)
    if name not in tags:
        raise TagError(
            f"This run has no tag {name!r}; its tags: {sorted(tags) or 'none'}. Tag a selection "
            "on the Latent map first."
        )
    return tags[name]


def tag_labels(tags: Mapping[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Per id: its tag name, ``"(several tags)"`` or ``"(untagged)"`` (object array)."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(len(ids), UNTAGGED, dtype=object)
    count = np.zeros(len(ids), dtype=np.int64)
    for name, members in tags.items():
        hit = np.isin(ids, members)
        out[hit] = name
        count += hit
    out[count > 1] = SEVERAL
    return out
