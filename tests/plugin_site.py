"""Install a plugin package for a test without pip: its modules plus a ``*.dist-info`` folder
(``METADATA`` and ``entry_points.txt``) in a temporary folder put on ``sys.path`` (and on
``PYTHONPATH`` for subprocesses), which ``importlib.metadata`` reads like site-packages."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def write_dist(
    site: Path, package: str, version: str, entry_points: dict[str, str], group="lsx.models"
) -> Path:
    """``<site>/<package>-<version>.dist-info`` declaring ``entry_points`` in ``group``."""
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"[{group}]"] + [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return info


@contextmanager
def installed(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> Iterator[None]:
    """``paths`` on sys.path and PYTHONPATH, ``lsx.models`` re-read; all undone afterwards."""
    import lsx.models

    before = set(sys.modules)
    for path in paths:
        monkeypatch.syspath_prepend(str(path))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*map(str, paths), *filter(None, [old])]))
    importlib.invalidate_caches()
    lsx.models.load_plugins()
    try:
        yield
    finally:
        for path in paths:
            while str(path) in sys.path:
                sys.path.remove(str(path))
        for name in set(sys.modules) - before:  # the plugin modules, imported from paths
            module = sys.modules.get(name)
            where = str(getattr(module, "__file__", "") or "")
            if any(where.startswith(str(p)) for p in paths):
                del sys.modules[name]
        importlib.invalidate_caches()
        lsx.models.load_plugins()


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_vae"


def example_site(root: Path) -> tuple[Path, Path]:
    """examples/own_vae as ``pip install`` would install it: its modules, and a dist-info with
    the entry points its pyproject.toml declares (read from the file, not copied here)."""
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = root / "example-site"
    write_dist(site, project["name"], project["version"], project["entry-points"]["lsx.models"])
    return site, EXAMPLE
