"""Safe file writes: atomic replacement, append-only JSON lines, and the one folder lock.

Every write lsx makes is atomic (temporary file in the same folder, fsync, ``os.replace``), so a
crash or Ctrl-C leaves the previous file intact. :class:`FolderLock` is the single exclusion
mechanism for writers (training a run, encoding a store): an ``fcntl.flock`` on ``<folder>/.lock``
whose content is the holder's PID. The kernel releases the lock when the holder dies, so a crashed
process never leaves a stale lock behind. This module sits at the bottom of the layers (see
docs/architecture.md): it imports nothing from lsx but the errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from lsx.errors import LsxError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600
        os.replace(tmp_path, path)
        with contextlib.suppress(OSError):  # fsync the folder so the rename survives a crash
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException:  # includes KeyboardInterrupt: never leave a torn or temp file
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Sorted, indented JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_with(path: Path, writer: Callable[[Path], None]) -> None:
    """Atomically create ``path`` with ``writer(tmp_path)``, e.g. ``torch.save`` or save_model."""
    with _atomic_path(path) as tmp:
        writer(tmp)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (a torn last line is skipped by :func:`read_jsonl`)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return [r for r in out if isinstance(r, dict)]


# ------------------------------------------------------------------------------ the folder lock


class LockedError(LsxError):
    """Another live process holds the folder's lock (``pid`` is its PID, or None if unknown)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def lock_holder(folder: Path | str) -> int | None:
    """PID of the live process that holds ``folder``'s lock, or None when nobody holds it.

    A ``.lock`` file left by a dead process (or by an older lsx that wrote PID files) is not
    held: the test is the kernel's lock, not the file's existence.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fh = open(path)  # noqa: SIM115 - closed below; opening never creates the file
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held exclusively by someone (maybe this process, through another fd)
            return _read_pid(path) or -1
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


class FolderLock:
    """Exclusive lock of one folder for one writer process, released when it exits or dies.

    >>> with FolderLock(run_dir, what="training"):  # LockedError if another process trains it
    ...     ...

    ``message`` is formatted with ``folder`` and ``pid`` for the :class:`LockedError`.
    """

    def __init__(
        self,
        folder: Path | str,
        message: str = "{folder} is in use by process {pid}; wait for it to finish or stop it.",
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.message = message
        self._fh: TextIO | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> FolderLock:
        if self._fh is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.close()
            pid = _read_pid(self.path)
            raise LockedError(
                self.message.format(folder=self.folder, pid=pid or "(unknown)"), pid
            ) from err
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # a lock file that stays behind reads as "not held" anyway
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
