"""Fixtures of the browser tests: Debian's chromium via Python Playwright, a run folder, and a
``streamlit run`` server started directly (so the PID is the server's) and stopped by its PID.

A missing chromium or playwright fails the tests (the README's test command installs both;
docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[2]
REPO_CHECKPOINTS = ROOT / "checkpoints"
PREFERRED_RUNS = ("demo-vae-mnist5k", "demo-vae-digits")  # the first one present is picked
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


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium. A missing browser or playwright is a failure, never a skip:
    the README's test command installs both."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium is not installed: run the README's test command (apt-get install -y chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "playwright is not installed: pip install -r requirements.txt (no `playwright install`)"
        )
    return str(path)


@dataclass(frozen=True)
class RunChoice:
    root: Path  # what LSX_CHECKPOINTS points at
    name: str  # the run folder to pick in the sidebar


def _tiny_run(root: Path) -> RunChoice:
    from lsx.checkpoint import save_checkpoint
    from lsx.data import load_dataset
    from lsx.models import build_model, make_config
    from lsx.train import data_info

    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("vae", input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    save_checkpoint(build_model(config), config, root / "tiny-vae-digits", data=data_info(ds))
    return RunChoice(root, "tiny-vae-digits")


@pytest.fixture(scope="session")
def run_choice(tmp_path_factory: pytest.TempPathFactory) -> RunChoice:
    """The repository's checkpoints folder when it holds a demo run, else a tmp folder with a
    tiny untrained run made here."""
    for name in PREFERRED_RUNS:
        run_dir = REPO_CHECKPOINTS / name
        if (run_dir / "model.safetensors").is_file() and (run_dir / "config.json").is_file():
            return RunChoice(REPO_CHECKPOINTS, name)
    return _tiny_run(tmp_path_factory.mktemp("checkpoints"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    log: Path


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"streamlit did not answer /_stcore/health in {timeout} s:\n{log.read_text()}"
    )


@pytest.fixture
def server(chromium: str, run_choice: RunChoice, tmp_path: Path) -> Iterator[Server]:
    """A fresh ``streamlit run app.py`` on a free port; stopped by its PID afterwards."""
    with serve(run_choice.root, tmp_path) as srv:
        yield srv


@contextlib.contextmanager
def serve(root: Path, tmp_path: Path, data_roots: Path | None = None) -> Iterator[Server]:
    """Start ``streamlit run app.py`` with ``LSX_CHECKPOINTS=root`` (and ``LSX_DATA_ROOTS``,
    the folder the app may read typed paths from, when given); stop exactly that PID."""
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "LSX_CHECKPOINTS": str(root), "PYTHONUNBUFFERED": "1"}
    if data_roots is not None:
        env["LSX_DATA_ROOTS"] = str(data_roots)
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true", "--server.port", str(port),
        "--global.developmentMode", "false", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        yield Server(url, proc.pid, log)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # exactly the server we started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
