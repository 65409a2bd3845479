"""AppTest of the home page (app.py): empty state, the runs table with model cards, and the note
on skipped entries (junk folders, broken configs, pickles)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state
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
        assert f"`{name}`" in note
    assert "not valid JSON" in note
    assert "never unpickles" in note
    assert at.sidebar.expander[0].label == "Skipped 4 entries in " + tmp_path.name + "/"
