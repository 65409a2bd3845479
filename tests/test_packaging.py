"""lsx as an installed package: ``pip install`` into a fresh venv, then from an empty folder outside
the clone ``lsx --help`` lists every subcommand, ``lsx runs`` lists the demo runs shipped in the
wheel, the installed app renders them (AppTest), and ``lsx app`` serves the app over HTTP.

The venv sees the system's packages (``--system-site-packages``: torch and friends are not
downloaded again); lsx itself is installed from this clone without dependencies and without build
isolation (hatchling comes with the ``[test]`` extra), so the test needs no network.
"""

from __future__ import annotations

import os
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lsx.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
_SHIPPED_FILES = {
    "config.json",
    "model.safetensors",
    "metrics.jsonl",
    "status.json",
    "stability.json",
}
DEMOS = sorted(p.name for p in (ROOT / "checkpoints").glob("demo-*") if p.is_dir())


def _unshipped(demos: Path) -> list[Path]:
    """What lies in the package's demo folder besides run folders and their shipped files."""
    return [
        p
        for p in demos.rglob("*")
        if not (p.is_dir() and p.parent == demos) and not (p.is_file() and p.name in _SHIPPED_FILES)
    ]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LSX_CHECKPOINTS")}
    env.update(HOME=str(home), LSX_CACHE_DIR=str(home / "cache"), PYTHONNOUSERSITE="1")
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with lsx installed from a wheel built from this clone (not editable)."""
    wheels, folder = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("venv")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(folder)], check=True
    )
    if sys.prefix != sys.base_prefix:  # the tests run in a venv: let the new one see its packages
        inner = folder / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
        (inner / "site-packages" / "_outer_venv.pth").write_text("\n".join(outer) + "\n")
    install = subprocess.run(
        [folder / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         *map(str, wheels.glob("lsx-*.whl"))],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return folder


@pytest.fixture
def outside(tmp_path) -> Path:
    """An empty working folder outside the clone, with its own HOME."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    return tmp_path


def _lsx(venv: Path, outside: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv / "bin" / "lsx", *args], cwd=outside / "work", env=_env(outside / "home"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_wheel_holds_the_app_and_the_demo_runs(venv):
    out = subprocess.run(
        [venv / "bin" / "python", "-c", "import lsx.paths as p; print(p.PACKAGE_DIR)"],
        cwd=venv, env=_env(venv), capture_output=True, text=True, check=True,
    )  # fmt: skip
    pkg = Path(out.stdout.strip())
    assert ROOT not in pkg.parents  # the installed copy, not this clone
    assert (pkg / "_app" / "app.py").is_file()
    assert len(list((pkg / "_app" / "pages").glob("*.py"))) == len(list(ROOT.glob("pages/*.py")))
    assert (pkg / "_app" / ".streamlit" / "config.toml").is_file()
    assert (pkg / "app" / "assets" / "latent_map.png").is_file()
    assert (pkg / "notebook" / "assets" / "scatter.js").is_file()
    assert sorted(p.name for p in (pkg / "_demo").iterdir()) == DEMOS
    assert not _unshipped(pkg / "_demo")  # no local caches or stores shipped


def test_lsx_help_and_runs_from_an_empty_folder(venv, outside):
    helped = _lsx(venv, outside, "--help")
    assert helped.returncode == 0, helped.stderr
    for name in COMMANDS:
        assert name in helped.stdout
    listed = _lsx(venv, outside, "runs")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == DEMOS
    assert not (outside / "home" / ".lsx").exists()  # listing writes nothing


def test_the_installed_app_lists_the_shipped_demo_runs(venv, outside):
    script = (
        "import lsx.paths as p\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file(str(p.app_dir() / 'app.py'), default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print(at.caption[0].value)\n"
        "page = AppTest.from_file(str(p.app_dir() / 'pages' / '2_latent_map.py'),\n"
        "                         default_timeout=90)\n"
        "page.query_params['run'] = 'demo-vae-digits'\n"
        "page.run()\n"
        "assert not page.exception, page.exception\n"
        "print(p.PACKAGE_DIR)\n"
    )
    out = subprocess.run(
        [venv / "bin" / "python", "-c", script], cwd=outside / "work",
        env=_env(outside / "home"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{len(DEMOS)} valid run(s)" in out.stdout
    assert str(outside / "home" / ".lsx" / "checkpoints") in out.stdout  # the user folder
    # the Latent map of a shipped demo run cached its projection in the user cache folder,
    # and nothing was written inside the installed package
    package = Path(out.stdout.split()[-1])
    assert list((outside / "home" / "cache" / "runs").glob("demo-vae-digits-*/cache/*.json"))
    assert not _unshipped(package / "_demo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode(errors="replace")


def test_lsx_app_serves_from_an_empty_folder(venv, outside):
    port = _free_port()
    runs = outside / "my-runs"
    log = (outside / "app.log").open("w")
    proc = subprocess.Popen(
        [venv / "bin" / "lsx", "app", "--port", str(port), "--checkpoints", str(runs)],
        cwd=outside / "work", env=_env(outside / "home"), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and health != "ok":
            assert proc.poll() is None, (outside / "app.log").read_text()
            try:
                health = _get(f"http://127.0.0.1:{port}/_stcore/health")[1]
            except OSError:
                time.sleep(0.3)
        assert health == "ok", (outside / "app.log").read_text()
        status, body = _get(f"http://127.0.0.1:{port}/latent_map")
        assert status == 200
        assert "<html" in body.lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # lsx app and its streamlit child, by our own PID
        proc.wait(timeout=20)
        log.close()
    text = (outside / "app.log").read_text()
    assert f"runs in {runs}" in text
    assert "no authentication" not in text  # localhost: no warning
