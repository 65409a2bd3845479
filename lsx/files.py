"""Safe file reads and writes: capped reads, atomic replacement, JSON lines, the one folder lock.

Every file lsx reads from a folder a user controls goes through :func:`read_bytes_capped`: only
regular files (a FIFO, a device or a socket is refused instead of blocking or reading forever),
opened non-blocking, with a byte cap enforced while reading. :func:`read_json_capped` adds the
JSON parse and turns every parse failure (bad UTF-8, bad JSON, nesting deep enough to exhaust the
recursion limit, integers of more than 4300 digits) into an :class:`~lsx.errors.LsxError` with a
message. Every write lsx makes is atomic (temporary file in the same folder, fsync,
``os.replace``), so a crash or Ctrl-C leaves the previous file intact. :class:`FolderLock` is the
single exclusion mechanism for writers (training a run, encoding a store): an ``fcntl.flock`` on
``<folder>/.lock`` whose content is the holder's PID. The kernel releases the lock when the holder
dies, so a crashed process never leaves a stale lock behind. This module sits at the bottom of the
layers (see docs/architecture.md): it imports nothing from lsx but the errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from lsx.errors import LsxError

LOCK_NAME = ".lock"
# metrics.jsonl: one ~300-byte line per epoch, epochs <= 100,000 (TrainConfig), so at most ~30 MB.
MAX_JSONL_BYTES = 32_000_000  # a longer file is read from its end: the newest records
MAX_JSONL_LINE_BYTES = 64_000  # an lsx metrics line is < 1 KB; a longer line is skipped as torn
_CHUNK = 1 << 20


def _file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a device"``, ... for a message about a path that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def open_regular(path: Path | str, error: type[LsxError] = LsxError, what: str = "file") -> int:
    """Open ``path`` read-only and non-blocking; refuse anything but a regular file.

    Returns the file descriptor (the caller closes it). ``O_NONBLOCK`` makes opening a FIFO return
    at once (a blocking open waits for a writer for good); ``fstat`` on the open descriptor then
    refuses it, and a symbolic link to ``/dev/zero``, with no race between check and open.

    Raises
    ------
    LsxError (or ``error``)
        The path is missing or unreadable, or is not a regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise error(
            f"Cannot read the {what} {path} ({err.strerror or err}). Check that it exists and "
            "that you may read it."
        ) from err
    try:
        mode = os.fstat(fd).st_mode
    except OSError as err:
        os.close(fd)
        raise error(f"Cannot read the {what} {path} ({err.strerror or err}).") from err
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(
            f"The {what} {path} is {_file_kind(mode)}, not a regular file; lsx reads regular "
            "files only. Replace it with the real file."
        )
    return fd


def read_bytes_capped(
    path: Path | str,
    max_bytes: int,
    what: str = "file",
    error: type[LsxError] = LsxError,
    *,
    tail: bool = False,
) -> bytes:
    """The content of the regular file ``path``, never more than ``max_bytes`` of it.

    Parameters
    ----------
    path : Path or str
    max_bytes : int
        The cap, checked on the size before reading and enforced again while reading (a file
        that grows, or lies about its size, cannot push more into memory).
    what : str
        What to call the file in messages (``"config.json"``).
    error : type of LsxError
        The error class raised (CheckpointError, DatasetError, ...).
    tail : bool
        Instead of refusing a larger file, return its last ``max_bytes`` bytes.

    Raises
    ------
    LsxError (or ``error``)
        Missing, unreadable, not a regular file (see :func:`open_regular`), or larger than
        ``max_bytes`` when ``tail`` is False.
    """
    fd = open_regular(path, error, what)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            if not tail:
                raise error(_too_large(path, what, f"{size:,} bytes", max_bytes))
            os.lseek(fd, size - max_bytes, os.SEEK_SET)
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            except BlockingIOError:  # only a non-regular file can say "would block"
                raise error(f"The {what} {path} cannot be read without blocking.") from None
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:  # grew while being read
                if tail:
                    chunks.append(chunk[: len(chunk) - (total - max_bytes)])
                    break
                raise error(_too_large(path, what, "more bytes than its size said", max_bytes))
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise error(f"Cannot read the {what} {path} ({err.strerror or err}).") from err
    finally:
        os.close(fd)


def _too_large(path: Path | str, what: str, got: str, max_bytes: int) -> str:
    return (
        f"The {what} {path} is too large: {got}; lsx reads at most {max_bytes:,} bytes of it. "
        "Is it the right file? Restore the one lsx wrote, or remove it."
    )


def parse_json_bytes(
    data: bytes, path: Path | str, what: str = "file", error: type[LsxError] = LsxError
) -> Any:
    """``json.loads`` of UTF-8 bytes; every way it can fail becomes ``error`` with a message.

    RecursionError (a document nested thousands of levels deep) and ValueError (bad JSON, an
    integer of more than 4300 digits) are the parse failures Python raises; MemoryError is left
    alone: the byte cap before parsing is what keeps memory bounded.
    """
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"The {what} {path} is not UTF-8 text ({err}); restore it.") from err
    except RecursionError as err:
        raise error(
            f"The {what} {path} is nested too deeply to parse (more than "
            f"~{sys.getrecursionlimit():,} levels); lsx never writes such files. Restore it."
        ) from err
    except ValueError as err:  # JSONDecodeError, and int("9" * 5000)'s digit limit
        raise error(f"The {what} {path} is not valid JSON ({err}); restore it.") from err


def read_json_capped(
    path: Path | str, max_bytes: int, what: str = "file", error: type[LsxError] = LsxError
) -> Any:
    """Read and parse the JSON file ``path`` of at most ``max_bytes`` bytes.

    Parameters
    ----------
    path : Path or str
    max_bytes : int
        Size cap, checked before anything is read (see :func:`read_bytes_capped`).
    what : str
        What to call the file in messages.
    error : type of LsxError
        The error class raised.

    Returns
    -------
    object
        The parsed JSON value (the caller checks its type).

    Raises
    ------
    LsxError (or ``error``)
        Missing, unreadable, not a regular file, too large, not UTF-8, not JSON, or nested too
        deeply; the message names the file and says what to do.
    """
    return parse_json_bytes(read_bytes_capped(path, max_bytes, what, error), path, what, error)


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


def read_jsonl(
    path: Path,
    *,
    max_bytes: int = MAX_JSONL_BYTES,
    max_line_bytes: int = MAX_JSONL_LINE_BYTES,
) -> list[dict[str, Any]]:
    """The JSON-object lines of ``path`` ([] if it does not exist).

    Lines that are not JSON objects (a torn last line, a line longer than ``max_line_bytes``,
    bad UTF-8) are skipped. A file longer than ``max_bytes`` is read from its end: the newest
    ``max_bytes`` bytes, without the partial first line.

    Raises
    ------
    LsxError
        The path exists but is not a regular file, or cannot be read.
    """
    if not os.path.lexists(path):
        return []
    data = read_bytes_capped(path, max_bytes, Path(path).name, tail=True)
    lines = data.split(b"\n")
    if len(data) == max_bytes and os.stat(path).st_size > max_bytes:
        lines = lines[1:]  # started mid-line
    out = []
    for line in lines:
        if not line.strip() or len(line) > max_line_bytes:
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # torn or corrupt line (UnicodeError is a ValueError)
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


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
