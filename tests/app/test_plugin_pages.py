"""AppTest of plugin kinds (tests/test_plugins.py installs the package): the Latent map page maps
a run of a plugin kind, the Train page offers the kind with its own fields, Home lists it with
its package and version and shows each plugin that failed to load once, with its package."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import save_checkpoint
from lsx.data import load_dataset
from lsx.models import build_model, make_config
from lsx.models.plugins import PluginWarning
from lsx.train import data_info
from tests.plugin_site import installed
from tests.test_plugins import BROKEN, broken_site, tiny_site

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
LATENT_MAP = str(ROOT / "pages" / "2_latent_map.py")
TRAIN_PAGE = str(ROOT / "pages" / "1_train.py")


def _env(monkeypatch, root: Path) -> None:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")  # as tests/conftest.py


def test_latent_map_opens_a_run_of_a_plugin_kind(monkeypatch, tmp_path):
    out = tmp_path / "runs"
    with installed(monkeypatch, tiny_site(tmp_path)):
        ds = load_dataset("digits")
        torch.manual_seed(0)
        config = make_config("tinyae", input_shape=ds.input_shape, latent_dim=2, shrink=0.5)
        save_checkpoint(build_model(config), config, out / "plug", data=data_info(ds))
        _env(monkeypatch, out)
        at = AppTest.from_file(LATENT_MAP, default_timeout=90)
        at.session_state[state.RUN_DIR] = str(out / "plug")
        at.run(timeout=90)
        assert not at.exception
        assert not at.error
        assert any(m.value.startswith("Showing **1,797**") for m in at.markdown)
        assert at.get("plotly_chart")
        assert "plug (tinyae, digits)" in at.sidebar.selectbox(key=state.RUN_PICKER).options


def test_train_page_and_home_list_the_plugin_kind(monkeypatch, tmp_path):
    with installed(monkeypatch, tiny_site(tmp_path)):
        _env(monkeypatch, tmp_path)
        at = AppTest.from_file(TRAIN_PAGE, default_timeout=90).run(timeout=90)
        assert not at.exception
        kind_box = at.selectbox(key=state.TR_KIND)
        assert "tinyae · a linear autoencoder from a test package" in kind_box.options
        kind_box.set_value("tinyae").run(timeout=90)
        assert not at.exception
        assert any(w.key == "tr_m_tinyae_shrink" for w in at.number_input)  # its own field
        home = AppTest.from_file(APP, default_timeout=60).run(timeout=60)
        assert not home.exception
        assert not home.error
        assert "Model kinds from installed packages" in [s.value for s in home.subheader]
        assert home.dataframe[-1].value.to_dict("records") == [
            {"kind": "tinyae", "model": "TinyAE", "package": "tiny-plug", "version": "0.3.0",
             "what": "a linear autoencoder from a test package"}
        ]  # fmt: skip
    home = AppTest.from_file(APP, default_timeout=60).run(timeout=60)  # uninstalled: no section
    assert "Model kinds from installed packages" not in [s.value for s in home.subheader]


def test_home_shows_each_broken_plugin_once_with_its_package(monkeypatch, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # asserted in tests/test_plugins.py
        with installed(monkeypatch, tiny_site(tmp_path), broken_site(tmp_path)):
            _env(monkeypatch, tmp_path)
            home = AppTest.from_file(APP, default_timeout=60).run(timeout=60)
            home.run(timeout=60)  # a rerun shows them again once, not twice
    assert not home.exception
    errors = [e.value for e in home.error]
    assert len(errors) == len(BROKEN)
    assert all(e.startswith("Not loaded: kind '") and "broken-plug 9.9" in e for e in errors)
    assert sum("'brokenimport'" in e and "no_such_module_anywhere" in e for e in errors) == 1
    assert home.dataframe[-1].value["kind"].tolist() == ["tinyae"]  # the good one still loads


PAGES = sorted(p.name for p in (ROOT / "pages").glob("[0-9]*_*.py"))


def test_every_page_opens_a_run_of_the_example_plugin_kind(monkeypatch, tmp_path):
    """ownvae (examples/own_vae, with a posterior) chosen on every page: no exception, no error;
    the Consistency page reads its posterior (an untrained one: the collapse alarm, and only it)."""
    from tests.plugin_site import example_site

    out = tmp_path / "runs"
    with installed(monkeypatch, *example_site(tmp_path)):
        ds = load_dataset("digits")
        torch.manual_seed(0)
        config = make_config("ownvae", input_shape=ds.input_shape, latent_dim=3, hidden_dim=4)
        save_checkpoint(build_model(config), config, out / "own", data=data_info(ds))
        _env(monkeypatch, out)
        assert len(PAGES) >= 8
        for page in PAGES:
            at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
            at.session_state[state.RUN_DIR] = str(out / "own")
            at.run(timeout=120)
            assert not at.exception, (page, [e.value for e in at.exception])
            errors = [e.value for e in at.error]
            if page.endswith("_consistency.py"):  # untrained: the page's own analysis speaks
                assert errors
                assert all(e.startswith("Posterior collapse alarm: **own**") for e in errors)
                continue
            assert not errors, (page, errors)
