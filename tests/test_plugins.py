"""Model kinds from installed packages (lsx.models.plugins): a tiny plugin package written here,
installed into a temporary path (a ``*.dist-info`` with ``entry_points.txt``), is discovered
through importlib.metadata, trains with ``python -m lsx train``, saves, lists and loads (the
pages: tests/app/test_plugin_pages.py); broken plugins are refused with their package named
while the other kinds still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import lsx.models
from lsx.checkpoint import CONFIG_NAME, list_runs, load_checkpoint, save_checkpoint
from lsx.cli import main
from lsx.errors import ConfigError
from lsx.models import BUILTIN_KINDS, MODELS, PLUGIN_PROBLEMS, PLUGINS, kinds_with, spec_for
from lsx.models.plugins import PluginWarning
from tests.plugin_site import installed, write_dist

ROOT = Path(__file__).resolve().parents[1]

# a plugin as a user would write it: plain torch layers, lsx's config and Losses only
TINY = """
from dataclasses import dataclass

import torch
from torch import nn

from lsx.config import ModelConfig, option
from lsx.errors import ConfigError
from lsx.models import Losses, ModelSpec


@dataclass(frozen=True)
class TinyConfig(ModelConfig):
    kind = "tinyae"
    shrink: float = option(1.0, "scale of the latent", low=0.0, low_open=True)

    def __post_init__(self):
        super().__post_init__()
        if self.spatial:
            raise ConfigError("TinyConfig: no spatial latent; set spatial=false")


class Tiny(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        n = config.input_numel
        self.enc = nn.Linear(n, config.latent_dim)
        self.dec = nn.Linear(config.latent_dim, n)

    @property
    def latent_shape(self):
        return (self.config.latent_dim,)

    def encode(self, x):
        return self.enc(x.flatten(1)) * self.config.shrink

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, *self.config.input_shape)

    def loss(self, x, y=None):
        recon = (self.decode(self.encode(x)) - x).pow(2).flatten(1).sum(1).mean()
        return Losses(total=recon, terms={"recon": recon})


SPEC = ModelSpec(TinyConfig, Tiny, "a linear autoencoder from a test package", label="TinyAE",
                 spatial=False)
"""

# plugins that break a rule, each in its own module of one broken package
BROKEN = {
    "brokenimport": ("import no_such_module_anywhere\n", "SPEC"),
    "vae": (TINY.replace('kind = "tinyae"', 'kind = "vae"'), "SPEC"),  # a built-in's name
    "notaspec": ("SPEC = object()\n", "SPEC"),
    "badshape": (
        TINY.replace('kind = "tinyae"', 'kind = "badshape"')
        .replace('label="TinyAE"', 'label="Bad"')
        .replace(
            "view(-1, *self.config.input_shape)",
            "view(-1, *self.config.input_shape)[..., :-1, :]",
        ),
        "SPEC",
    ),
    "mismatch": (TINY.replace('label="TinyAE"', 'label="Mis"'), "SPEC"),  # config says tinyae
}


def tiny_site(root: Path) -> Path:
    site = root / "site"
    (site / "tinyplug").mkdir(parents=True)
    (site / "tinyplug" / "__init__.py").write_text(textwrap.dedent(TINY), encoding="utf-8")
    write_dist(site, "tiny-plug", "0.3.0", {"tinyae": "tinyplug:SPEC"})
    return site


def broken_site(root: Path) -> Path:
    site = root / "broken"
    (site / "brokenplug").mkdir(parents=True)
    (site / "brokenplug" / "__init__.py").write_text("", encoding="utf-8")
    entry_points = {}
    for kind, (source, attr) in BROKEN.items():
        (site / "brokenplug" / f"m_{kind}.py").write_text(source, encoding="utf-8")
        entry_points[kind] = f"brokenplug.m_{kind}:{attr}"
    write_dist(site, "broken-plug", "9.9", entry_points)
    return site


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    with installed(monkeypatch, tiny_site(tmp_path)):
        yield


def test_a_plugin_kind_is_discovered_like_a_built_in_one(tiny):
    assert list(MODELS)[: len(BUILTIN_KINDS)] == list(BUILTIN_KINDS)  # built-ins first
    assert spec_for("tinyae").label == "TinyAE"
    plugin = PLUGINS["tinyae"]
    assert (plugin.package, plugin.version, plugin.target) == (
        "tiny-plug",
        "0.3.0",
        "tinyplug:SPEC",
    )
    assert "tinyae" not in kinds_with("has_posterior")
    assert not PLUGIN_PROBLEMS


def test_without_the_package_the_kind_is_gone(monkeypatch, tmp_path):
    with installed(monkeypatch, tiny_site(tmp_path)):
        assert "tinyae" in MODELS
    assert "tinyae" not in MODELS
    assert "tinyae" not in PLUGINS
    assert tuple(MODELS) == BUILTIN_KINDS


def test_lsx_kinds_lists_the_plugin_with_its_package(tiny, capsys):
    assert main(["kinds"]) == 0
    out = capsys.readouterr().out
    assert "tinyae a linear autoencoder from a test package [plugin: tiny-plug 0.3.0]" in out
    assert "shrink=1.0" in out


def _train(out: Path, name: str) -> subprocess.CompletedProcess:
    args = ["--model", "tinyae", "--data", "digits", "--epochs", "1", "--latent-dim", "2"]
    args += ["--shrink", "0.5", "--out", str(out), "--name", name, "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ["PYTHONPATH"], str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "lsx", "train", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_train_save_list_open_and_skip_without_the_package(monkeypatch, tmp_path):
    out = tmp_path / "runs"
    with installed(monkeypatch, tiny_site(tmp_path)):
        proc = _train(out, "plug")
        assert proc.returncode == 0, proc.stderr
        header = json.loads((out / "plug" / CONFIG_NAME).read_text())
        assert header["kind"] == "tinyae"
        assert header["config"]["shrink"] == 0.5  # the plugin's own field, from the CLI flag
        assert header["plugin"] == {"package": "tiny-plug", "version": "0.3.0"}
        assert (out / "plug" / "model.safetensors").is_file()
        runs, skipped = list_runs(out)
        assert [r.name for r in runs] == ["plug"]
        assert not skipped
        model, config = load_checkpoint(out / "plug")
        assert type(model).__name__ == "Tiny"
        assert config.shrink == 0.5
        x = torch.rand(3, 1, 8, 8)
        assert model.encode(x).shape == (3, 2)
    # uninstalled: listed as skipped, saying which package to install
    runs, skipped = list_runs(out)
    assert not runs
    ((name, reason),) = skipped
    assert name == "plug"
    assert "install the package that provides kind 'tinyae' (tiny-plug)" in reason
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "lsx", "runs", "--out", str(out)],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert "skipped plug:" in proc.stdout
    assert "install the package that provides kind 'tinyae' (tiny-plug)" in proc.stdout


def test_broken_plugins_are_refused_and_the_others_still_load(monkeypatch, tmp_path):
    sites = (tiny_site(tmp_path), broken_site(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with installed(monkeypatch, *sites):
            assert "tinyae" in MODELS  # unaffected by its broken neighbours
            assert MODELS["vae"].module_cls.__module__ == "lsx.models.vae"  # not replaced
            problems = {p.kind: p for p in PLUGIN_PROBLEMS}
            assert set(problems) == set(BROKEN)
            assert all(p.package == "broken-plug" and p.version == "9.9" for p in problems.values())
            why = {kind: p.message for kind, p in problems.items()}
            assert "ModuleNotFoundError" in why["brokenimport"]
            assert "no_such_module_anywhere" in why["brokenimport"]
            assert "'vae' is a built-in lsx kind; a plugin cannot replace it" in why["vae"]
            assert "must name an lsx.models.ModelSpec; it names a object" in why["notaspec"]
            assert (
                "decode(encode(x)) has shape (2, 1, 27, 28); x has shape (2, 1, 28, 28)"
                in (why["badshape"])
            )
            assert (
                "TinyConfig.kind is 'tinyae' but the entry point is named 'mismatch'"
                in (why["mismatch"])
            )
            assert str(problems["brokenimport"]).startswith(
                "kind 'brokenimport' of the package broken-plug 9.9 (brokenplug.m_brokenimport:"
                "SPEC) was not loaded:"
            )
            with pytest.raises(
                ConfigError, match=r"unknown model kind 'brokenimport'.*broken-plug"
            ):
                spec_for("brokenimport")
    plugin_warnings = [w for w in caught if issubclass(w.category, PluginWarning)]
    # once per discovery: on install (and none on the reload after, when it is gone)
    assert len(plugin_warnings) == len(BROKEN)
    assert not PLUGIN_PROBLEMS
    assert "tinyae" not in MODELS


def test_a_run_of_a_plugin_that_fails_to_load_says_why(monkeypatch, tmp_path):
    out = tmp_path / "runs"
    with installed(monkeypatch, tiny_site(tmp_path)):
        model = lsx.models.build_model(lsx.models.make_config("tinyae", input_shape=(1, 8, 8)))
        save_checkpoint(model, model.config, out / "r")
    site = tmp_path / "now-broken"
    (site / "tinyplug").mkdir(parents=True)
    (site / "tinyplug" / "__init__.py").write_text("raise RuntimeError('bad build')\n")
    write_dist(site, "tiny-plug", "0.3.1", {"tinyae": "tinyplug:SPEC"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # asserted in the test above
        with installed(monkeypatch, site):
            _, skipped = list_runs(out)
    ((_, reason),) = skipped
    assert "kind 'tinyae' comes from the package tiny-plug 0.3.1, which failed to load" in reason
    assert "RuntimeError: bad build" in reason


def test_the_example_plugin_passes_the_registry_and_model_tests(tmp_path):
    """The checks every built-in kind passes (tests/models/), run on the installed example kind
    ``ownvae`` in a fresh process; its spatial cases do not apply, and its config refuses them."""
    from tests.plugin_site import example_site

    site, example = example_site(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (site, example, ROOT)))}
    tests = ["tests/models/test_registry.py", "tests/models/test_models.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *tests,
         "-k", "ownvae and not shape2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    assert len(passed) >= 15, proc.stdout[-3000:]  # every per-kind check ran on ownvae
    assert any("test_has_posterior_means_a_callable_gaussian_posterior" in p for p in passed)
    assert any("test_checkpoint_round_trip_gives_identical_outputs" in p for p in passed)
    code = (
        "from lsx.models import MODELS, make_config\nassert not MODELS['ownvae'].spatial\n"
        "try:\n make_config('ownvae', spatial=True, arch='conv')\nexcept Exception as e:\n"
        " print(type(e).__name__, e)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert "ConfigError OwnVAEConfig: the ConvVAE has a vector latent" in proc.stdout, proc.stderr


def test_the_missing_kind_reason_names_only_a_real_package_name():
    from lsx.models.plugins import missing_kind_reason

    good = missing_kind_reason("ownvae", {"package": "own-vae"}, [])
    assert good == (
        "kind 'ownvae' is not installed: install the package that provides kind 'ownvae' "
        "(own-vae), then restart lsx"
    )
    for recorded in ({"package": "[x](http://evil.example)"}, {"package": 3}, ["own-vae"], None):
        reason = missing_kind_reason("ownvae", recorded, [])  # config.json is untrusted
        assert "install the package that provides kind 'ownvae', then" in reason
        assert "evil" not in reason


def test_lsx_kinds_names_each_broken_plugin_once(tmp_path):
    site = broken_site(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "lsx", "kinds"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    both = done.stdout + done.stderr
    for kind in BROKEN:
        assert both.count(f"kind '{kind}' of the package broken-plug 9.9") == 1, both[-2000:]
    assert "PluginWarning" not in done.stderr  # `kinds` lists them itself, once
    runs = subprocess.run(
        [sys.executable, "-m", "lsx", "datasets"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "PluginWarning" in runs.stderr  # other commands still warn
