"""AppTest of the Manifold page: empty state, happy path (verdicts, rank/strata/subspace figures,
trajectory, path profile, descriptors), a vector-latent run, and error paths (bad levels, corrupt
weights); plus the page's pure helpers (default runs, level parsing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import manifold as mp
from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import WEIGHTS_NAME, list_runs, save_checkpoint
from lsx.data import load_dataset
from lsx.errors import ConfigError
from lsx.models import build_model, make_config
from lsx.train import data_info

PAGE = str(Path(__file__).parents[2] / "pages" / "6_manifold.py")
TIMEOUT = 90


def make_run(root: Path, name: str, kind: str, spatial: bool, data: dict | None = None) -> Path:
    """A tiny untrained run on the bundled 8x8 digits (conv + spatial latent (3, 2, 2), or MLP
    with a vector latent), saved as lsx saves runs."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    arch = {"arch": "conv", "spatial": True} if spatial else {}
    config = make_config(kind, input_shape=ds.input_shape, latent_dim=3, hidden_dim=8, **arch)
    run_dir = root / name
    data = data_info(ds) if data is None else data
    save_checkpoint(build_model(config), config, run_dir, train={"epochs": 1}, data=data)
    return run_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root, "tiny-ae-spatial", "ae", True)
    make_run(root, "tiny-vae-spatial", "vae", True)
    make_run(root, "tiny-vae-vector", "vae", False)
    return root


def page(monkeypatch: pytest.MonkeyPatch, root: Path, **session) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.MF_N_IMAGES] = 50
    for key, value in session.items():
        at.session_state[key] = value
    return at.run(timeout=TIMEOUT)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [fig["layout"]["title"]["text"] for fig in charts(at)]


def test_empty_checkpoints_folder_says_how_to_train(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path)
    assert not at.exception
    assert "No trained runs" in at.info[0].value
    assert "Compare" in at.info[1].value
    assert not at.get("plotly_chart")
    assert "lsx interpretations" in at.caption[0].value  # the label stays visible


def test_happy_path_two_spatial_models(monkeypatch, root):
    runs = [str(root / "tiny-ae-spatial"), str(root / "tiny-vae-spatial")]
    at = page(monkeypatch, root, **{state.MF_RUNS: runs})
    assert not at.exception
    assert not at.error
    verdicts = [m for m in at.metric if m.label == "Verdict (lsx rule)"]
    assert len(verdicts) == 2
    assert {m.value for m in verdicts} <= {"smooth", "stratified"}
    got = titles(at)
    assert got[0] == "Rank versus perturbation, per mode"
    assert got[1].startswith("Strata: share of images per rank triple")
    assert any(t.startswith("Principal subspaces") for t in got)
    assert any(t.startswith("Sample 0 as the level grows") for t in got)
    assert got[-1] == "Smoothness along a linear latent path"
    rank_fig = charts(at)[0]
    assert len([t for t in rank_fig["data"] if t.get("showlegend")]) == 2  # one per model
    assert len(at.get("image")) == 2  # one decoded path strip per model
    assert len(at.dataframe) == 2  # strata table, subspace table
    assert "Singular spectra" not in " ".join(got)
    at.toggle(key=state.MF_SPECTRA).set_value(True)
    at.toggle(key=state.MF_DESCRIPTORS).set_value(True).run(timeout=TIMEOUT)
    assert not at.exception
    assert any(t.startswith("Singular spectra") for t in titles(at))
    assert len(at.dataframe) == 3  # + global descriptors
    assert at.dataframe[2].value["model"].tolist() == [
        "CAE · tiny-ae-spatial",
        "VAE · tiny-vae-spatial",
    ]
    assert (at.dataframe[2].value["trustworthiness"] <= 1).all()


def test_vector_latent_gets_the_analyses_that_apply(monkeypatch, root):
    at = page(monkeypatch, root, **{state.MF_RUNS: [str(root / "tiny-vae-vector")]})
    assert not at.exception
    assert not at.error
    notes = " ".join(i.value for i in at.info)
    assert "not a tensor (C, h, w)" in notes
    assert "What applies to a vector latent" in notes
    assert "No checkpoint with a spatial latent" in notes
    got = titles(at)
    assert not any(t.startswith("Rank versus") for t in got)
    assert any(t.startswith("Principal subspaces") for t in got)
    assert any(t.startswith("Sample 0") for t in got)
    assert [m.value for m in at.metric] == ["vector latent"]
    at.toggle(key=state.MF_DESCRIPTORS).set_value(True).run(timeout=TIMEOUT)
    assert not at.exception
    assert len(at.dataframe) == 2  # subspace table and global descriptors
    assert at.dataframe[1].value["latent_numel"].tolist() == [3]


def test_a_plain_mlp_ae_is_called_ae_not_cae(monkeypatch, tmp_path):
    # 8x8 digits with arch "auto": the ae is an MLP, so the paper's "CAE" would be wrong
    make_run(tmp_path, "tiny-ae-vector", "ae", False)
    at = page(monkeypatch, tmp_path, **{state.MF_RUNS: [str(tmp_path / "tiny-ae-vector")]})
    assert not at.exception
    options = at.multiselect[0].options
    assert options == ["AE · tiny-ae-vector (digits)"]
    at.toggle(key=state.MF_DESCRIPTORS).set_value(True).run(timeout=TIMEOUT)
    assert not at.exception
    assert at.dataframe[-1].value["model"].tolist() == ["AE · tiny-ae-vector"]


def test_bad_levels_broken_runs_and_missing_data_are_messages(monkeypatch, root, tmp_path):
    runs = [str(root / "tiny-ae-spatial")]
    at = page(monkeypatch, root, **{state.MF_RUNS: runs, state.MF_LEVELS: "0, 0.1, 2"})
    assert not at.exception
    assert "out of range for 'gaussian'" in at.error[0].value
    at = page(monkeypatch, root, **{state.MF_RUNS: runs, state.MF_LEVELS: "0, lots"})
    assert "Levels must be numbers separated by commas" in at.error[0].value
    broken = tmp_path / "broken"
    shutil.copytree(root / "tiny-ae-spatial", broken / "tiny-ae-spatial")
    (broken / "tiny-ae-spatial" / WEIGHTS_NAME).write_bytes(b"not a safetensors file")
    at = page(monkeypatch, broken, **{state.MF_RUNS: [str(broken / "tiny-ae-spatial")]})
    assert not at.exception
    assert "`tiny-ae-spatial` is not usable" in at.sidebar.warning[0].value
    assert not at.get("plotly_chart")
    no_data = make_run(tmp_path / "nodata", "tiny-ae-nodata", "ae", True, data={})
    at = page(monkeypatch, no_data.parent, **{state.MF_RUNS: [str(no_data)]})
    assert not at.exception
    assert "records no dataset" in at.error[0].value
    assert not at.get("plotly_chart")


def test_default_runs_pick_one_spatial_run_per_kind(root):
    runs, _ = list_runs(root)
    assert mp.default_runs(runs, None) == []  # no mnist5k runs here
    chosen = mp.default_runs(runs, str(root / "tiny-vae-vector"))
    assert chosen == [str(root / "tiny-vae-vector"), str(root / "tiny-ae-spatial")]
    chosen = mp.default_runs(runs, str(root / "tiny-ae-spatial"))
    assert chosen == [str(root / "tiny-ae-spatial"), str(root / "tiny-vae-spatial")]


def test_parse_levels():
    assert mp.parse_levels("", "gaussian") is None
    assert mp.parse_levels("0.3, 0.1 0.2", "gaussian") == (0.0, 0.1, 0.2, 0.3)
    assert mp.parse_levels("4", "blur") == (0.0, 4.0)
    with pytest.raises(ConfigError, match="out of range for 'occlusion'"):
        mp.parse_levels("1.5", "occlusion")
    with pytest.raises(ConfigError, match=r"e\.g\. '0, 0\.05, 0\.1, 0\.2, 0\.3, 0\.5'"):
        mp.parse_levels("x", "gaussian")
