"""AppTest of the Consistency page: empty state, one run, VAE vs a second run side by side (table,
pair maps, distributions, gallery), the collapse alarm, a deterministic encoder, and the error
paths (runs of different datasets, a transform set that does not fit the data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.app.consistency import check_same_data
from lsx.checkpoint import save_checkpoint
from lsx.data import load_dataset
from lsx.errors import ConfigError
from lsx.models import build_model, make_config
from lsx.train import data_info

PAGE = str(Path(__file__).parents[2] / "pages" / "5_consistency.py")


def make_run(root: Path, name: str, kind: str = "vae", data: dict | None = None) -> Path:
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config(kind, input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    save_checkpoint(build_model(config), config, root / name, train={"epochs": 1},
                    data=data_info(ds) if data is None else data)  # fmt: skip
    return root / name


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root, "vae-digits")
    make_run(root, "vae-cr-digits")
    make_run(root, "ae-digits", kind="ae")
    other = {**data_info(load_dataset("digits")), "spec": "texture-patches", "hash": "x"}
    make_run(root, "vae-elsewhere", data=other)  # a header saying: trained on other data
    return root


def page(monkeypatch, root: Path, run: str | None = None, **session) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    if run is not None:
        at.session_state[state.RUN_DIR] = str(root / run)
    at.session_state[state.CO_POINTS] = 60  # small and quick
    at.session_state[state.CO_NLL] = 5
    at.session_state[state.CO_ALARM] = 0.0  # untrained runs have few active units
    for key, value in session.items():
        at.session_state[key] = value
    return at.run(timeout=60)


def test_empty_state_asks_to_pick_a_run(monkeypatch, root):
    at = page(monkeypatch, root)
    assert not at.exception
    assert "Pick a checkpoint" in at.info[0].value
    assert not at.get("plotly_chart")


def test_one_run_table_map_distributions_and_gallery(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits")
    assert not at.exception
    assert not at.error
    assert "**60** test points" in at.markdown[0].value
    (table,) = at.dataframe
    df = table.value
    assert list(df.columns) == ["metric", "vae-digits"]
    metrics = df["metric"].tolist()
    assert metrics[0] == "active units (> 0.01)"
    assert "all: mean pair KL (nats)" in metrics
    assert "rotate: kNN kept (k=10)" in metrics
    assert len(at.get("plotly_chart")) == 2  # one pair map, the distributions
    assert len(at.get("image")) == 1
    assert "scale" in str(at.get("image")[0].proto)  # captions name the transforms


def test_two_runs_side_by_side(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits", **{state.CO_OTHER: str(root / "vae-cr-digits")})
    assert not at.exception
    assert not at.error
    assert list(at.dataframe[0].value.columns) == ["metric", "vae-digits", "vae-cr-digits"]
    assert len(at.get("plotly_chart")) == 3  # two pair maps, the distributions
    assert len(at.get("image")) == 2
    at.radio(key=state.CO_METRIC).set_value("displacement").run(timeout=60)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3


def test_collapse_alarm(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits", **{state.CO_THRESHOLD: 1.0, state.CO_ALARM: 0.25})
    assert not at.exception
    assert "Posterior collapse alarm" in at.error[0].value
    assert "only 0 of 3 latent dimensions active" in at.error[0].value


def test_deterministic_encoder_gets_a_note_and_no_pair_kl(monkeypatch, root):
    at = page(monkeypatch, root, "ae-digits")
    assert not at.exception
    assert not at.error
    assert any("deterministic encoder" in c.value for c in at.caption)
    assert "No pair KL for deterministic encoders" in at.info[0].value


def test_runs_of_different_datasets_are_refused(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits", **{state.CO_OTHER: str(root / "vae-elsewhere")})
    assert not at.exception
    assert "trained on different datasets" in at.error[0].value
    assert "vae-elsewhere on 'texture-patches'" in at.error[0].value
    assert not at.get("plotly_chart")


def test_unsuitable_transform_set_is_refused(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits", **{state.CO_SET: "textures"})
    assert not at.exception
    assert "colour jitter, which needs RGB images" in at.error[0].value


def test_gallery_sample_out_of_range_is_a_message(monkeypatch, root):
    at = page(monkeypatch, root, "vae-digits", **{state.CO_SAMPLE: 5000})
    assert not at.exception
    assert "Test sample 5000 out of range 0..359" in at.error[0].value
    assert len(at.get("plotly_chart")) == 2  # the rest of the page is still there


def test_check_same_data_message():
    a = {"data": {"spec": "mnist5k", "image_size": None}}
    b = {"data": {"spec": "digits", "image_size": None}}
    check_same_data([("a", a), ("b", a)])
    with pytest.raises(ConfigError, match=r"different datasets \(a on 'mnist5k', b on 'digits'\)"):
        check_same_data([("a", a), ("b", b)])


def test_nll_is_computed_in_the_background_and_fills_in(monkeypatch, root):
    """The heavy NLL does not hold the first visit up (issue #17 item 6): the page shows every
    other number first, then the NLL, equal to the one the metric suite computes itself."""
    from lsx.analysis.posterior import importance_nll
    from lsx.app import background
    from lsx.app.consistency import points

    at = page(monkeypatch, root, "vae-digits", **{state.CO_SEED: 3})
    assert not at.exception
    nll_row = next(
        r for r in at.dataframe[0].value.to_dict("records") if r["metric"].startswith("NLL")
    )
    if nll_row["vae-digits"] == "computing ...":
        assert "computed in the background" in " ".join(i.value for i in at.info)
        for future in list(background.results().futures.values()):
            future.result(timeout=120)
        at.run(timeout=60)
    assert not at.exception
    row = next(r for r in at.dataframe[0].value.to_dict("records") if r["metric"].startswith("NLL"))
    from lsx.checkpoint import load_checkpoint
    from lsx.data import load_dataset

    model, _ = load_checkpoint(root / "vae-digits")
    ds = load_dataset("digits")
    x = ds.x_test[points(ds.y_test, 60)]
    want = float(importance_nll(model.eval(), x, n_samples=5, seed=3).mean())
    assert float(row["vae-digits"]) == pytest.approx(want, rel=1e-3)
