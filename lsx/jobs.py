"""The job runner: start an ``lsx`` CLI subprocess with its log, read its status, signal it.

No Streamlit here (processes layer, see docs/architecture.md); the app pages build on it.
"""

from __future__ import annotations

import os
from pathlib import Path


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
