"""AppTest of the home page (app.py): empty state, the runs table with model cards, and the note
on skipped entries (junk folders, broken configs, pickles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state, widgets
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import save_checkpoint
from lsx.data import load_dataset
from lsx.files import append_jsonl, atomic_write_json
from lsx.models import build_model, make_config
from lsx.train import data_info

APP = str(Path(__file__).parents[2] / "app.py")


def make_run(root: Path, name: str, kind: str = "ae") -> Path:
    """A tiny untrained run on the bundled 8x8 digits with one metrics line and a status."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config(kind, input_shape=ds.input_shape, latent_dim=2, hidden_dim=8)
    run_dir = root / name
    save_checkpoint(build_model(config), config, run_dir, train={"epochs": 3}, data=data_info(ds))
    append_jsonl(run_dir / "metrics.jsonl", {"epoch": 3, "train_loss": 0.5, "test_loss": 0.25})
    atomic_write_json(run_dir / "status.json", {"state": "completed", "message": "done"})
    return run_dir


def home(monkeypatch: pytest.MonkeyPatch, root: Path) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")  # as tests/conftest.py; the app sets it once per process
    return AppTest.from_file(APP, default_timeout=30).run()


def test_empty_state_explains_how_to_train(monkeypatch, tmp_path):
    at = home(monkeypatch, tmp_path)
    assert not at.exception
    assert at.title[0].value.startswith("lsx")
    assert "No trained runs" in at.info[0].value
    assert at.code[0].value == "python -m lsx train --model vae --data mnist5k --epochs 20"
    assert not at.dataframe


def test_runs_table_and_model_card(monkeypatch, tmp_path):
    make_run(tmp_path, "ae-digits")
    make_run(tmp_path, "vae-digits", kind="vae")
    at = home(monkeypatch, tmp_path)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == ["ae-digits", "vae-digits"]
    assert list(table["kind"]) == ["ae", "vae"]
    assert table["status"].tolist() == ["completed", "completed"]
    assert table["test_loss"].tolist() == [0.25, 0.25]
    assert "beta 1" in table["config"][1]
    at.sidebar.selectbox(key=state.RUN_PICKER).select(str(tmp_path / "vae-digits")).run()
    assert at.session_state[state.RUN_DIR] == str(tmp_path / "vae-digits")
    card = " ".join(c.value for c in at.sidebar.caption)
    assert "dataset **digits**" in card
    assert "status **completed**" in card
    assert "test loss 0.25" in card
    assert "latent_dim 2" in card


def test_skipped_entries_are_named_with_reasons(monkeypatch, tmp_path):
    make_run(tmp_path, "good")
    (tmp_path / "junk").mkdir()
    (tmp_path / "notes.txt").write_text("not a run")
    broken = make_run(tmp_path, "broken-config")
    (broken / "config.json").write_text("{ not json")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"w": torch.zeros(2)}, pickled / "model.pt")
    at = home(monkeypatch, tmp_path)
    assert not at.exception
    assert list(at.dataframe[0].value["run"]) == ["good"]
    note = at.warning[0].value
    for name in ("junk", "notes.txt", "broken-config", "pickled"):
        assert f"**{widgets.md_escape(name)}**" in note
    assert "not valid JSON" in note
    assert "never unpickles" in note
    assert at.sidebar.expander[0].label == "Skipped 4 entries in " + tmp_path.name + "/"


# ------------------------------------------------------------------------------ the first visit

REPO_CHECKPOINTS = Path(__file__).parents[2] / "checkpoints"


def test_home_opens_on_a_chosen_demo_run_with_its_map_and_one_next_step(monkeypatch):
    from lsx.app import home as home_page

    at = home(monkeypatch, REPO_CHECKPOINTS)
    assert not at.exception
    demo = REPO_CHECKPOINTS / home_page.DEMO_RUNS[0]
    assert at.session_state[state.RUN_DIR] == str(demo)  # chosen without a click
    assert at.sidebar.selectbox(key=state.RUN_PICKER).value == str(demo)
    assert at.subheader[0].value == f"{demo.name} · vae on mnist5k"
    chart = at.get("plotly_chart")[0]  # the picture: the demo run's latent map
    assert any("1,000 test images of `mnist5k`" in m.value for m in at.markdown)
    assert "valid run(s)" in at.caption[0].value  # the runs line stays the first caption
    assert chart.proto.spec
    links = at.get("page_link")
    assert len(links) == 1  # one obvious next step
    assert links[0].proto.page == "latent_map"
    assert "Latent map" in links[0].proto.label


def test_home_keeps_a_run_the_user_chose_or_named_in_the_url(monkeypatch):
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(REPO_CHECKPOINTS))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "demo-ae-digits"
    at.run()
    assert not at.exception
    assert at.session_state[state.RUN_DIR] == str(REPO_CHECKPOINTS / "demo-ae-digits")
    chosen = str(REPO_CHECKPOINTS / "demo-sae-mnist5k")
    at.sidebar.selectbox(key=state.RUN_PICKER).select(chosen).run()
    assert at.session_state[state.RUN_DIR] == chosen
    assert at.subheader[0].value == "demo-sae-mnist5k · sae on mnist5k"


def test_no_demo_run_no_preselection(monkeypatch, tmp_path):
    make_run(tmp_path, "ae-digits")
    at = home(monkeypatch, tmp_path)
    assert not at.exception
    assert at.session_state[state.RUN_DIR] is None
    assert not at.get("page_link")  # nothing chosen: the runs table and how to train
    assert at.dataframe[0].value["run"].tolist() == ["ae-digits"]


def test_the_router_names_the_first_page_home_and_keeps_every_page_url():
    from lsx.app import home as home_page

    files = home_page.page_files()
    assert [f.name for f in files] == sorted(
        (p.name for p in (Path(APP).parent / "pages").glob("*.py")),
        key=lambda n: int(n.split("_", 1)[0]),
    )
    titles = [home_page.page_title(f) for f in files]
    assert titles[:3] == ["Train", "Latent map", "Lookup"]
    assert "Large datasets" in titles
    # the URL paths auto-discovery gives the same files: deep links work in both modes
    assert [home_page.url_path(f) for f in files][:2] == ["train", "latent_map"]
    source = Path(APP).read_text(encoding="utf-8")
    assert 'st.navigation(home.pages(home.render, Path(__file__).parent / "pages")).run()' in source
    assert 'title="Home"' in Path(home_page.__file__).read_text(encoding="utf-8")


def test_the_page_icon_is_a_file_shipped_with_lsx_not_an_icon_from_the_internet(monkeypatch):
    import streamlit as st

    seen: dict = {}
    monkeypatch.setattr(st, "set_page_config", lambda **kwargs: seen.update(kwargs))
    state.init("Home")
    icon = Path(seen["page_icon"])  # a ":material/...:" icon is fetched from fonts.gstatic.com
    assert icon.is_file()
    assert icon.is_relative_to(Path(APP).parent / "lsx")


def test_untrusted_names_in_skipped_runs_are_shown_literally(monkeypatch, tmp_path):
    make_run(tmp_path, "good")
    bad = make_run(tmp_path, "[click](javascript:alert)")
    config = json.loads((bad / "config.json").read_text())
    config["kind"] = config["config"]["kind"] = "![img](http://example.invalid/x.png) :red[alarm]"
    (bad / "config.json").write_text(json.dumps(config))
    at = home(monkeypatch, tmp_path)
    assert not at.exception
    shown = [at.warning[0].value, *(m.value for m in at.sidebar.expander[0].markdown)]
    for text in shown:
        assert widgets.md_escape("![img](http://example.invalid/x.png) :re") in text  # escaped
        assert "](http" not in text  # no link, no image fetched from elsewhere
        assert ":red[" not in text  # no colour directive
