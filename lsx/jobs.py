"""The job runner: start an ``lsx`` CLI subprocess with its log, read its status, signal it.

A job is ``python -m lsx <command> ...`` started with ``subprocess.Popen`` in its own session,
stdin closed, stdout and stderr going to a log file, so it survives the browser tab (and the
script run) that started it. Its record (:class:`Job`: PID, command line, log, start time) is
written atomically as JSON beside the work, so any server process, or a later one, can watch it.

Trust: a PID is only believed while the process's command line still holds the job's words (e.g.
``lsx train NAME``, :func:`command_has`); a recycled PID is never reported alive nor signalled.
Where the command line cannot be read (no ``/proc``, e.g. macOS) a live PID is trusted.

Exclusion: writers hold :class:`lsx.files.FolderLock` on their folder (the trainer its run folder,
``lsx encode`` its store folder); a starter asks :func:`lsx.files.lock_holder` before starting.
Within one server process, :class:`Registry` (its ``Popen`` children, under a
``threading.Lock``) refuses a second start of the same work while the first one is starting.

The registry is an object the caller keeps (the app: in ``st.cache_resource``); this module holds
no mutable state. No Streamlit here (processes layer, see docs/architecture.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsx.errors import LsxError
from lsx.files import atomic_write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
TAIL_BYTES = 65536  # :func:`tail` reads at most this much of the end of a log


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (the owner of a run's lock file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_has(pid: int, *args: str) -> bool | None:
    """Whether the command line of process ``pid`` holds every one of ``args`` (e.g. ``"lsx",
    "train"``), so a recycled PID is never signalled; None where it cannot be read (no /proc)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = {a.decode(errors="replace") for a in cmd}
    return all(a in words for a in args)


def is_ours(pid: int, match: Sequence[str]) -> bool:
    """Whether ``pid`` is a live process whose command line holds every word of ``match``; a
    live PID whose command line cannot be read (no /proc) is trusted."""
    return pid > 0 and pid_alive(pid) and command_has(pid, *match) is not False


# ------------------------------------------------------------------------------ the job record


@dataclass(frozen=True)
class Job:
    """One started job, as written to (and read back from) its JSON record.

    Attributes
    ----------
    pid : int
    match : tuple of str
        Words its command line holds (e.g. ``("lsx", "train", "my-run")``): a process without
        them is not this job, whatever its PID.
    key : str
        What the job works on (a run or store folder); the :class:`Registry` key.
    log : Path or None
    started : float
        ``time.time()`` just before the process was started.
    command : tuple of str
        Its command line without the interpreter (``-m lsx train ...``).
    """

    pid: int
    match: tuple[str, ...] = ()
    key: str = ""
    log: Path | None = None
    started: float = 0.0
    command: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """The JSON record (``argv`` is the command line without the interpreter)."""
        out: dict[str, Any] = {"pid": self.pid, "started": self.started, "key": self.key}
        out.update(argv=list(self.command), match=list(self.match))
        if self.log is not None:
            out["log"] = str(self.log)
        return out

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], *, match: Sequence[str] = (), key: str = ""
    ) -> Job:
        """A job from a JSON record; ``match`` and ``key``, when given, replace the record's
        (an older record lacks them; the reader knows best where it found the record)."""
        log = record.get("log")
        return cls(
            int(record.get("pid") or 0),
            tuple(str(w) for w in match or record.get("match") or ()),
            str(key or record.get("key") or ""),
            Path(log) if log else None,
            float(record.get("started") or 0.0),
            tuple(str(w) for w in record.get("argv") or ()),
        )


def read_json(path: Path | str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tail(log: Path | str, n_lines: int) -> str:
    """The last ``n_lines`` of a log (of at most its last 64 KiB); "" when there is none."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - TAIL_BYTES))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-n_lines:])


# ------------------------------------------------------------------------------ the registry


class Registry:
    """The ``Popen`` handles of one server process's jobs, by key, so finished ones are reaped
    (never zombies that look alive) and their exit codes known; and the keys asked to stop.

    Keep one per server process (the app: ``st.cache_resource``). ``lock`` serialises starts:
    :func:`start` runs its ``check`` and the spawn under it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.cancelled: set[str] = set()

    def running_pid(self, key: str) -> int | None:
        """PID of this server's child for ``key`` while it runs; None otherwise."""
        proc = self.procs.get(key)
        return proc.pid if proc is not None and proc.poll() is None else None

    def poll(self, key: str, pid: int | None = None) -> tuple[bool, int | None] | None:
        """``(running, exit code)`` of this server's child for ``key`` (with PID ``pid`` when
        given); None when this server did not start it."""
        proc = self.procs.get(key)
        if proc is None or (pid and proc.pid != pid):
            return None
        rc = proc.poll()
        return rc is None, rc


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with unbuffered output and this lsx importable."""
    out = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), out.get("PYTHONPATH")) if p)
    return out


def start(
    command: Sequence[str],
    *,
    key: str,
    log: Path,
    registry: Registry,
    match: Sequence[str] = (),
    job_file: Path | None = None,
    extra: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    check: Callable[[], None] | None = None,
    append: bool = False,
    header: bool = False,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    what: str = "the process",
    error: type[LsxError] = LsxError,
) -> Job:
    """Start ``command`` in its own session, its output going to ``log``; record it.

    Parameters
    ----------
    command : sequence of str
        The full command line, e.g. ``[sys.executable, "-m", "lsx", "train", ...]``.
    key : str
        What the job works on (a run or store folder).
    log : Path
        Receives stdout and stderr (created; truncated unless ``append``).
    registry : Registry
        This server's children; the new one is added under ``key``.
    match : sequence of str
        Words of ``command`` that identify the job (see :func:`is_ours`).
    job_file : Path or None
        Where the :class:`Job` record goes (atomically), merged with ``extra``.
    extra : mapping, callable or None
        More fields of the record (a callable is called under the registry lock, after ``check``).
    check : callable or None
        Called under ``registry.lock`` before starting; raises to refuse (busy, exists, ...).
    append, header : bool
        Append to the log; first write a ``$ <command>`` line to it.
    cwd, env : optional
        Default: the repository root and :func:`child_env`.
    preexec_fn : callable or None
        Run in the child before exec (tests set resource limits).
    what, error : str, LsxError subclass
        How a failed start is reported: ``error("Could not start <what>: <OSError>")``.

    Raises
    ------
    LsxError
        ``check``'s error, or ``error`` when the process could not be started.
    """
    argv = [str(a) for a in command]
    with registry.lock:
        if check is not None:
            check()
        fields = dict(extra() if callable(extra) else extra or {})
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        started = time.time()  # before the child exists: whatever it writes is newer
        with open(log, "ab" if append else "wb") as out:
            if header:
                out.write(f"$ {' '.join(argv[1:])}\n".encode())
                out.flush()
            try:
                proc = subprocess.Popen(
                    argv, cwd=cwd or REPO_ROOT, env=child_env(env), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=preexec_fn,
                )  # fmt: skip
            except OSError as err:
                raise error(f"Could not start {what}: {err}") from err
        registry.procs[key] = proc
        registry.cancelled.discard(key)
        job = Job(proc.pid, tuple(match), key, Path(log), started, tuple(argv[1:]))
        if job_file is not None:
            atomic_write_json(job_file, {**job.record(), **fields})
    return job


# ------------------------------------------------------------------------------ status, signals


def alive(job: Job, registry: Registry | None = None) -> tuple[bool, int | None]:
    """Whether the job's process runs, and its exit code when this server started it.

    A child of this server is polled (and so reaped); any other PID counts only while its
    command line is still the job's (:func:`is_ours`).
    """
    polled = registry.poll(job.key, job.pid) if registry is not None and job.key else None
    if polled is not None:
        return polled
    return is_ours(job.pid, job.match), None


def stop(job: Job, registry: Registry | None = None) -> bool:
    """Send SIGTERM to the job if it still runs and is still ours; True when one was sent."""
    proc = registry.procs.get(job.key) if registry is not None and job.key else None
    if proc is not None and (not job.pid or proc.pid == job.pid):
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGTERM)
    elif is_ours(job.pid, job.match):
        try:
            os.kill(job.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
    else:
        return False
    if registry is not None:
        registry.cancelled.add(job.key)
    return True


def python_command(*args: str) -> list[str]:
    """``[sys.executable, "-m", "lsx", *args]``: an lsx CLI command in this interpreter."""
    return [sys.executable, "-m", "lsx", *args]
