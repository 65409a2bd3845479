"""What the browser benches share: Chromium's flags, a copy of the demo runs with an empty cache,
and a ``streamlit run app.py`` on a free loopback port that is stopped by its own PID.

The benches are scripts (``python bench/NAME.py``), so this module is imported as ``_server``
from the bench folder; the browser tests keep their own copy in ``tests/browser/conftest.py``
(the test suite does not import bench scripts).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
HOST = "127.0.0.1"
RUN_FILES = ("config.json", "model.safetensors", "metrics.jsonl", "status.json")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def copy_run(run_dir: Path, root: Path) -> Path:
    """``run_dir``'s files (no caches) copied into ``root``; returns the copy."""
    dest = root / run_dir.name
    dest.mkdir(parents=True)
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)
    return dest


def copy_demos(root: Path) -> None:
    """The shipped demo runs, without their caches, into ``root`` (an empty disk cache)."""
    for run in sorted(CHECKPOINTS.glob("demo-*")):
        copy_run(run, root)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def health(url: str, timeout: float) -> float | None:
    """Seconds for ``GET /_stcore/health`` to answer ``ok``; None on failure."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as resp:
            ok = resp.read().strip() == b"ok"
    except OSError:
        return None
    return time.perf_counter() - start if ok else None


def start_server(
    root: Path, log: Path | None, env: dict[str, str] | None = None, timeout: float = 90.0
) -> tuple[subprocess.Popen, str, float]:
    """A fresh ``streamlit run app.py`` over the runs in ``root`` (its own user cache beside it).

    Returns the process, its URL and the seconds from start to ``/_stcore/health`` answering.
    ``log`` None discards the server's output; ``env`` adds variables (e.g. LSX_UMAP_WARMUP).
    """
    port = free_port()
    full_env = {**os.environ, "LSX_CHECKPOINTS": str(root), "PYTHONUNBUFFERED": "1"}
    full_env["LSX_CACHE_DIR"] = str(root.parent / "user-cache")  # never the user's own cache
    full_env.update(env or {})
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.address", HOST, "--server.port", str(port),
        "--global.developmentMode", "false", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    start = time.perf_counter()
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log is not None:
            out.close()
    url = f"http://{HOST}:{port}"
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            text = log.read_text() if log is not None else ""
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{text}")
        if health(url, 2.0) is not None:
            return proc, url, time.perf_counter() - start
        time.sleep(0.1)
    stop(proc)
    text = log.read_text() if log is not None else ""
    raise RuntimeError(f"streamlit did not become healthy in {timeout:g} s:\n{text}")


def stop(proc: subprocess.Popen) -> None:
    """Stop exactly the server this script started."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
