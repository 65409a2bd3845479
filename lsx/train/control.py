"""How a training job is controlled from outside: stop signals (SIGTERM/SIGINT), the lock that
keeps a second job out of a run folder, and the result a fit ends with."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsx.errors import TrainingError
from lsx.files import FolderLock, LockedError


@dataclass
class FitResult:
    state: str  # completed | early_stopped | stopped
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


class _StopRequest:
    """SIGTERM/SIGINT set a flag the loop honours at the next step; a second signal kills."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # Python allows handlers only in the main thread
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One training job per run folder (:class:`lsx.files.FolderLock` on ``<run_dir>/.lock``,
    which holds the trainer's PID and is released by the kernel if the trainer dies).

    Raises
    ------
    TrainingError
        Another process holds the lock; the message names its PID.
    """
    lock = FolderLock(
        run_dir,
        "{folder} is being trained by process {pid}. Wait for it, stop it, or train under "
        "another --name.",
    )
    try:
        lock.acquire()
    except LockedError as err:
        raise TrainingError(str(err)) from err
    try:
        yield
    finally:
        lock.release()


def _progress_bar(total: int, epoch: int, epochs: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # only the CLI draws bars

    return tqdm(
        total=total,
        desc=f"epoch {epoch + 1}/{epochs}",
        leave=False,
        disable=not enabled,
        dynamic_ncols=True,
    )
