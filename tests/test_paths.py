"""lsx.paths (where runs are read and caches written, clone vs installed package) and the
``lsx app`` command (its streamlit command line, environment, checks and the no-auth warning)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lsx import paths
from lsx.cli import main
from lsx.commands import app as app_cmd
from lsx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Pretend lsx is an installed wheel: a package folder with _app/app.py and _demo/."""
    pkg = tmp_path / "site-packages" / "lsx"
    (pkg / "_app").mkdir(parents=True)
    (pkg / "_app" / "app.py").write_text("")
    (pkg / "_demo").mkdir()
    monkeypatch.setattr(paths, "PACKAGE_DIR", pkg)
    monkeypatch.setattr(paths, "PACKAGED_APP", pkg / "_app")
    monkeypatch.setattr(paths, "PACKAGED_DEMOS", pkg / "_demo")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(paths.CHECKPOINTS_ENV, raising=False)
    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return pkg


def test_a_clone_reads_and_writes_its_own_checkpoints(monkeypatch):
    monkeypatch.delenv(paths.CHECKPOINTS_ENV, raising=False)
    assert not paths.is_installed()
    assert paths.app_dir() == ROOT
    assert paths.user_checkpoints() == ROOT / "checkpoints"
    assert paths.demo_checkpoints() == ROOT / "checkpoints"
    assert paths.checkpoint_roots() == [ROOT / "checkpoints"]  # the demos are already there
    run = ROOT / "checkpoints" / "demo-vae-digits"
    assert paths.run_cache_dir(run) == run / "cache"
    assert paths.find_run("demo-vae-digits") == run


def test_lsx_checkpoints_names_the_users_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path))
    assert paths.user_checkpoints() == tmp_path
    assert paths.checkpoint_roots() == [tmp_path]  # in a clone: exactly that folder
    assert paths.find_run("demo-vae-digits") is None
    assert paths.find_run("../checkpoints") is None  # a name, never a path


def test_an_installed_package_lists_its_demos_and_caches_outside(installed, tmp_path):
    home = tmp_path / "home"
    assert paths.is_installed()
    assert paths.app_dir() == installed / "_app"
    assert paths.user_checkpoints() == home / ".lsx" / "checkpoints"
    assert paths.checkpoint_roots() == [home / ".lsx" / "checkpoints", installed / "_demo"]
    demo = installed / "_demo" / "demo-vae-digits"
    demo.mkdir()
    cache = paths.run_cache_dir(demo)
    assert cache.parent.parent == home / ".cache" / "lsx" / "runs"
    assert cache.parent.name.startswith("demo-vae-digits-")
    assert installed not in cache.parents  # nothing written into the package
    mine = tmp_path / "mine" / "my-run"
    assert paths.run_cache_dir(mine) == mine / "cache"
    assert paths.find_run("demo-vae-digits") == demo
    assert paths.extra_roots(installed / "_demo") == []  # listing the demos themselves


def test_the_cache_folder_follows_lsx_cache_dir(installed, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "c"))
    assert paths.user_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(paths.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.user_cache_dir() == tmp_path / "xdg" / "lsx"


def test_lsx_runs_lists_the_packaged_demos_after_the_users_runs(installed, tmp_path, capsys):
    import shutil

    for name in ("demo-vae-digits", "demo-ae-digits"):
        shutil.copytree(ROOT / "checkpoints" / name, installed / "_demo" / name,
                        ignore=shutil.ignore_patterns("cache", "stores"))  # fmt: skip
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "checkpoints" / "demo-ae-digits", mine / "demo-ae-digits",
                    ignore=shutil.ignore_patterns("cache", "stores"))  # fmt: skip
    assert main(["runs", "--out", str(mine)]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["demo-ae-digits", "demo-vae-digits"]  # the user's copy hides the demo


class _FakePopen:
    calls: list = []

    def __init__(self, argv, env):
        self.calls.append((argv, env))

    def wait(self, timeout=None):
        return 0


def test_lsx_app_runs_streamlit_on_the_packaged_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    _FakePopen.calls.clear()
    assert main(["app", "--port", "8600", "--checkpoints", str(tmp_path / "runs")]) == 0
    argv, env = _FakePopen.calls[0]
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert argv[4] == str(paths.app_dir() / "app.py")
    assert "--server.address=127.0.0.1" in argv
    assert "--server.port=8600" in argv
    # the app's settings travel as flags: Streamlit reads config.toml only from the cwd
    assert "--server.enableXsrfProtection=true" in argv
    assert "--theme.base=light" in argv
    assert env[paths.CHECKPOINTS_ENV] == str(tmp_path / "runs")
    assert "no authentication" not in capsys.readouterr().err


def test_lsx_app_warns_when_serving_beyond_localhost(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    _FakePopen.calls.clear()
    assert main(["app", "--host", "0.0.0.0", "--checkpoints", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: the lsx app has no authentication" in err
    assert "0.0.0.0" in err
    assert "--server.address=0.0.0.0" in _FakePopen.calls[0][0]


def test_lsx_app_refuses_bad_arguments(tmp_path, capsys):
    assert main(["app", "--port", "0"]) == 2
    assert "--port must be between 1 and 65535; got 0" in capsys.readouterr().err
    afile = tmp_path / "f"
    afile.write_text("")
    assert main(["app", "--checkpoints", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        app_cmd.run(type("A", (), {"port": 70000, "checkpoints": None, "host": "127.0.0.1"})())


def test_config_flags_read_the_shipped_settings(tmp_path):
    flags = app_cmd.config_flags(ROOT / ".streamlit" / "config.toml")
    assert "--browser.gatherUsageStats=false" in flags
    assert app_cmd.config_flags(tmp_path / "missing.toml") == []


def test_app_data_paths_stay_inside_the_data_roots(monkeypatch, tmp_path):
    from lsx.errors import ConfigError
    from lsx.paths import DATA_ROOTS_ENV, app_data_path, data_roots, user_checkpoints

    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    assert data_roots() == [(user_checkpoints().parent / "data").resolve()]
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    (tmp_path / "outside").mkdir()
    (a / "out").symlink_to(tmp_path / "outside")
    monkeypatch.setenv(DATA_ROOTS_ENV, f"{a}{os.pathsep}{b}")
    assert app_data_path(str(a / "sub")) == a / "sub"
    assert app_data_path("sub/x.npy") == a / "sub" / "x.npy"  # relative: inside the first root
    assert app_data_path(str(b)) == b
    messages = set()
    for bad in ("/etc", str(tmp_path / "outside"), f"{a}/../outside", "out", "../b/../outside"):
        with pytest.raises(ConfigError, match="reads datasets only from its data folders") as err:
            app_data_path(bad)
        messages.add(str(err.value))
    assert len(messages) == 1  # never tells which of those exist


def test_stores_of_a_packaged_demo_run_are_written_to_the_user_cache(monkeypatch, tmp_path):
    from lsx.latents import store_dir_for, stores_root

    package = tmp_path / "site-packages" / "lsx"
    demo = package / "_demo" / "demo-vae-digits"
    demo.mkdir(parents=True)
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    store = store_dir_for(demo, "npy:/data/big.npy", "all")
    assert (tmp_path / "cache") in store.parents
    assert package not in store.parents  # nothing is written inside the installed package
    assert stores_root(demo) in store.parents
    own = tmp_path / "runs" / "mine"
    assert store_dir_for(own, "digits").parent == own / "stores"  # a user's run keeps its stores
