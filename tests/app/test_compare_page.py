"""AppTest of the Compare page: empty state; two checkpoints on one dataset (numbers, two aligned
panels, linked selection, gallery, metric table); a checkpoint with itself (identity values);
different datasets (a choice of data both can encode, or a clear refusal); a missing dataset;
UMAP fitted in the background (PCA and a notice meanwhile, then the maps switch)."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from lsx.analysis.compare import compare_latents
from lsx.app import compare, compare_frame, state
from lsx.app.cache import THREADS_ENV, projection_jobs
from lsx.checkpoint import (
    METRICS_NAME,
    STATUS_NAME,
    list_runs,
    load_checkpoint,
    save_checkpoint,
)
from lsx.data import load_dataset
from lsx.files import append_jsonl, atomic_write_json
from lsx.models import build_model, make_config
from lsx.train import data_info

PAGE = str(Path(__file__).parents[2] / "pages" / "7_compare.py")
N_DIGITS = 1797


def make_run(root: Path, name: str, kind: str, ds, seed: int, loss: float, **data) -> Path:
    torch.manual_seed(seed)
    config = make_config(kind, input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    run = root / name
    info = {**data_info(ds), **data}
    save_checkpoint(build_model(config), config, run, train={"epochs": 1}, data=info)
    append_jsonl(run / METRICS_NAME, {"epoch": 1, "test_loss": loss, "train_loss": loss + 1})
    atomic_write_json(run / STATUS_NAME, {"state": "completed", "epoch": 1, "epochs": 1})
    return run


def png_folder(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for name in ("left", "right"):
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 255, size=(8, 8)).astype(np.uint8)
            Image.fromarray(img, mode="L").save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("compare")
    root = base / "checkpoints"
    digits = load_dataset("digits")
    make_run(root, "a-vae", "vae", digits, seed=0, loss=30.0)
    make_run(root, "b-ae", "ae", digits, seed=1, loss=0.02)
    folder = load_dataset(f"folder:{png_folder(base / 'pics')}", image_size=8)
    make_run(root, "c-folder", "ae", folder, seed=2, loss=0.05, image_size=8)
    big = make_config("ae", input_shape=(1, 28, 28), latent_dim=2, hidden_dim=8)
    save_checkpoint(build_model(big), big, root / "d-mnist", data={"spec": "mnist5k"})
    return root


def page(monkeypatch, root: Path, a: str | None = None, b: str | None = None) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=120)
    if a is not None:
        at.session_state[state.CMP_A] = str(root / a)
        at.session_state[state.CMP_B] = str(root / b)
    return at.run(timeout=120)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def figure(at: AppTest) -> dict:
    chart = next(c for c in at.get("plotly_chart") if "x2" in c.proto.spec)
    fig = json.loads(chart.proto.spec)
    for trace in fig["data"]:
        for field in ("customdata", "x", "y"):
            data = trace[field]
            if isinstance(data, dict):  # plotly encodes numpy arrays as base64
                data = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
            trace[field] = data
    return fig


def panel_a(at: AppTest) -> dict[int, tuple[float, float]]:
    """Panel A's position of every sample id."""
    return {
        i: (x, y)
        for t in figure(at)["data"]
        if t.get("xaxis", "x") == "x"
        for i, x, y in zip(t["customdata"], t["x"], t["y"], strict=True)
    }


def test_empty_state(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path)
    assert not at.exception
    assert "No trained runs" in at.info[0].value


def test_two_checkpoints_numbers_aligned_panels_linked_selection_and_table(monkeypatch, root):
    at = page(monkeypatch, root, "a-vae", "b-ae")
    assert not at.exception
    values = metrics(at)
    assert 0.0 < float(values["Linear CKA"]) < 1.0
    assert 0.0 <= float(values["Mean kNN Jaccard (k=10)"]) < 1.0
    fig = figure(at)
    panels = {t.get("xaxis", "x") for t in fig["data"]}
    assert panels == {"x", "x2"}
    per_panel = {p: sum(len(t["customdata"]) for t in fig["data"] if t.get("xaxis", "x") == p)
                 for p in panels}  # fmt: skip
    assert per_panel == {"x": N_DIGITS, "x2": N_DIGITS}
    assert fig["layout"]["xaxis2"]["matches"] == "x"  # one frame: linked axes
    # select two points (as a box in panel A would): both panels highlight them, gallery shows them
    at.session_state[state.CMP_CHART] = {
        "selection": {"points": [{"customdata": 5}, {"customdata": 1500}], "point_indices": [],
                      "box": [], "lasso": []},
    }  # fmt: skip
    at.run(timeout=120)
    assert not at.exception
    fig = figure(at)
    for panel in ("x", "x2"):
        highlighted = [
            t["customdata"][i]
            for t in fig["data"]
            if t.get("xaxis", "x") == panel
            for i in (t.get("selectedpoints") or [])
        ]
        assert sorted(highlighted) == [5, 1500]
    assert any("2 of 2 selected" in c.value for c in at.caption)
    assert len(at.get("image")) == 1
    assert str(at.get("image")[0].proto).count("id 5") == 1  # gallery caption
    table = next(d.value for d in at.dataframe if "comparable" in d.value.columns)
    row = table.set_index("metric").loc["test_loss"]
    assert (row["A"], row["B"]) == (30.0, 0.02)
    # a VAE's objective (nats) and an AE's (MSE) are not subtracted, and the table says why
    assert row["B − A"] is None or np.isnan(row["B − A"])
    assert row["comparable"] == "no: the VAE objective vs the AE objective"
    assert any("same unit" in c.value for c in at.caption)
    drift = next(d.value for d in at.dataframe if "centroid drift" in d.value.columns)
    assert len(drift) == 10


def spread(fig: dict, panel: str) -> float:
    """RMS distance of a panel's points from their centre."""
    xy = np.array(
        [(x, y) for t in fig["data"] if t.get("xaxis", "x") == panel
         for x, y in zip(t["x"], t["y"], strict=True)]
    )  # fmt: skip
    return float(np.sqrt(((xy - xy.mean(axis=0)) ** 2).sum(axis=1).mean()))


def test_a_vae_and_an_ae_reconstruction_in_common_units_and_maps_of_equal_spread(monkeypatch, root):
    at = page(monkeypatch, root, "a-vae", "b-ae")
    assert not at.exception
    rec = next(d.value for d in at.dataframe if "MSE per pixel" in set(d.value.get("metric", [])))
    rec = rec.set_index("metric")
    # oracle: both untrained checkpoints' per-pixel MSE of every digit, recomputed here
    x = np.concatenate([load_dataset("digits").x_train, load_dataset("digits").x_test])
    for side, name in (("A", "a-vae"), ("B", "b-ae")):
        model = load_checkpoint(root / name)[0].eval()
        with torch.inference_mode():
            x_hat = model.decode(model.encode(torch.from_numpy(x.copy()))).numpy()
        mse = ((x_hat - x) ** 2).reshape(len(x), -1).mean(1)
        assert rec.loc["MSE per pixel", side] == pytest.approx(mse.mean(), rel=1e-4)
        assert rec.loc["PSNR (dB)", side] == pytest.approx(
            (10 * np.log10(1 / mse)).mean(), rel=1e-4
        )
    assert rec.loc["MSE per pixel", "B − A"] == pytest.approx(
        rec.loc["MSE per pixel", "B"] - rec.loc["MSE per pixel", "A"]
    )
    # both maps standardised before B is rotated onto A: the same spread, B is no small blob
    fig = figure(at)
    assert spread(fig, "x2") == pytest.approx(spread(fig, "x"), rel=0.02)
    assert any("standardised" in c.value for c in at.caption)


def test_a_checkpoint_compared_with_itself_gives_identity_values(monkeypatch, root):
    at = page(monkeypatch, root, "b-ae", "b-ae")
    assert not at.exception
    assert metrics(at) == {
        "Linear CKA": "1.000",
        "Mean kNN Jaccard (k=10)": "1.000",
        "Procrustes disparity": "0.000",
        "Max centroid drift": "0.000",
    }
    assert "same checkpoint" in at.markdown[0].value
    table = next(d.value for d in at.dataframe if "comparable" in d.value.columns)
    assert (table["B − A"] == 0).all()
    assert (table["comparable"] == "yes").all()


def test_different_datasets_of_one_shape_offer_a_dataset_both_can_encode(monkeypatch, root):
    at = page(monkeypatch, root, "b-ae", "c-folder")
    assert not at.exception
    assert "Neighbourhoods can only be compared on the same samples" in at.warning[0].value
    choice = at.selectbox(key=state.CMP_DATA)
    assert choice.options[0] == "digits (A's training data)"
    assert choice.options[1].endswith("(B's training data)")
    assert "Linear CKA" in metrics(at)  # compared on A's data by default
    choice.set_value(choice.options[1]).run(timeout=120)
    assert not at.exception
    assert "of **20** samples of `folder:" in at.markdown[0].value


def test_different_input_shapes_are_refused_with_a_clear_message(monkeypatch, root):
    at = page(monkeypatch, root, "a-vae", "d-mnist")
    assert not at.exception
    assert "expect inputs of different shapes (1×8×8 vs 1×28×28)" in at.error[0].value
    assert not at.metric


def test_a_dataset_that_is_gone_is_an_error_not_a_crash(monkeypatch, root, tmp_path):
    moved = tmp_path / "checkpoints"
    shutil.copytree(root / "c-folder", moved / "c-folder")
    folder = next(iter(list_runs(moved)[0])).dataset.removeprefix("folder:")
    shutil.copytree(folder, tmp_path / "backup")
    shutil.rmtree(folder)
    try:
        at = page(monkeypatch, moved, "c-folder", "c-folder")
        assert not at.exception
        assert "does not exist" in at.error[0].value
    finally:
        shutil.copytree(tmp_path / "backup", folder)


def test_data_choices_list_same_shape_builtins(root):
    runs = {r.name: r for r in list_runs(root)[0]}
    choices, message = compare.data_choices(runs["a-vae"], runs["b-ae"])
    assert [c.spec for c in choices] == ["digits"]
    assert message is None
    choices, message = compare.data_choices(runs["b-ae"], runs["c-folder"])
    assert [c.spec for c in choices][0] == "digits"
    assert choices[1].spec.startswith("folder:")
    assert "trained on `digits`" in message


def test_umap_is_fitted_in_the_background_and_the_maps_switch_by_themselves(monkeypatch, tmp_path):
    digits = load_dataset("digits")
    make_run(tmp_path, "a-vae", "vae", digits, seed=0, loss=30.0)
    make_run(tmp_path, "b-ae", "ae", digits, seed=1, loss=0.02)
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(tmp_path))
    monkeypatch.setenv(THREADS_ENV, "1")
    calls = []  # the numbers are computed once, whichever map is shown

    def counting(*args, **kwargs):
        calls.append(1)
        return compare_latents(*args, **kwargs)

    monkeypatch.setattr(compare_frame, "compare_latents", counting)
    # hold the worker until the first answer is checked: with numba warm a 200-point fit can end
    # before the page's polling fragment runs, which would rerun the page into the UMAP map
    release = threading.Event()
    fit = compare_frame._fit_in_background

    def held_fit(*args, **kwargs):
        assert release.wait(timeout=120)
        return fit(*args, **kwargs)

    monkeypatch.setattr(compare_frame, "_fit_in_background", held_fit)

    def open_page() -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=120)
        at.session_state[state.CMP_A] = str(tmp_path / "a-vae")
        at.session_state[state.CMP_B] = str(tmp_path / "b-ae")
        at.session_state[state.CMP_CAP] = 200  # a small map: the fit is cheap once numba is warm
        at.session_state[state.CMP_METHOD] = "umap"
        return at.run(timeout=120)

    at = open_page()
    assert not at.exception
    # the request does not fit: it answers with the PCA comparison and says UMAP is on its way
    assert "UMAP is being fitted for A and B in the background; showing PCA" in at.info[0].value
    # the worker's real progress (one fit after the other), not a constant guess
    assert "Fit 1 of 2 · " in at.info[0].value
    assert "15-45" not in at.info[0].value
    assert any(c.value.startswith("PCA of each latent space") for c in at.caption)
    assert at.json[0].value.count('"method": "pca"') == 2
    assert "of **1,797** samples" in at.markdown[0].value
    pca_numbers, pca_map = metrics(at), panel_a(at)
    assert len(pca_map) == 200
    # both fits went to the app's one projection worker
    mine = {
        key: f
        for key, f in projection_jobs().futures.items()
        if key[0] == "compare" and str(tmp_path) in key[1]
    }
    assert sorted((k[1].rsplit("/", 1)[1], k[6]) for k in mine) == [
        ("a-vae", "umap"),
        ("b-ae", "umap"),
    ]
    release.set()
    done, not_done = wait(mine.values(), timeout=180)  # what the polling fragment waits for
    assert not not_done
    assert all(f.exception() is None for f in done)

    at.run(timeout=120)  # the fragment's st.rerun(scope="app")
    assert not at.exception
    assert not at.info
    assert any(c.value.startswith("UMAP of each latent space") for c in at.caption)
    manifests = json.loads(at.json[0].value)
    assert [m["method"] for m in manifests.values()] == ["umap", "umap"]
    assert [m["disk_cache"] for m in manifests.values()] == ["hit", "hit"]  # fitted by the worker
    assert metrics(at) == pca_numbers  # CKA, Jaccard, drift do not depend on the map
    assert len(calls) == 1  # ... and were not computed again for it
    umap_map = panel_a(at)
    assert umap_map.keys() == pca_map.keys()
    assert umap_map != pca_map

    st.cache_data.clear()  # a new server process: memory cold, disk warm
    st.cache_resource.clear()
    at = open_page()
    assert not at.exception
    assert not at.info  # read from disk at once, no background job
    assert any(c.value.startswith("UMAP of each latent space") for c in at.caption)
    assert panel_a(at) == umap_map
