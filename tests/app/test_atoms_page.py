"""AppTest of the Atoms page (empty state, scvae, vqvae and ae runs, uploads, broken weights) and
of the latent map's "dominant atom" colour."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from lsx.app import background, state
from lsx.app.cache import THREADS_ENV
from lsx.app.latent_map import color_label, color_options
from lsx.checkpoint import WEIGHTS_NAME, save_checkpoint
from lsx.data import load_dataset
from lsx.models import build_model, make_config
from lsx.train import data_info

PAGES = Path(__file__).parents[2] / "pages"
PAGE = str(PAGES / "4_atoms.py")
MAP_PAGE = str(PAGES / "2_latent_map.py")
SPATIAL = {"latent_dim": 4, "hidden_dim": 16, "spatial": True, "arch": "conv"}


def make_run(root: Path, kind: str, **fields) -> Path:
    """A tiny untrained run on the bundled 8x8 digits, saved as lsx saves runs."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config(kind, input_shape=ds.input_shape, **fields)
    run_dir = root / f"tiny-{kind}"
    save_checkpoint(build_model(config), config, run_dir, train={"epochs": 1}, data=data_info(ds))
    return run_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_run(root, "scvae", n_atoms=12, lam=0.3, **SPATIAL)
    make_run(root, "vqvae", n_codes=12, **SPATIAL)
    make_run(root, "ae", latent_dim=3, hidden_dim=16)
    return root


def page(monkeypatch, root: Path, run: str | None, file: str = PAGE, **session) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(file, default_timeout=60)
    if run is not None:
        at.session_state[state.RUN_DIR] = str(root / run)
    at.session_state[state.AT_SCALE] = 0.25  # keeps segmenting the 640x427 photo quick
    for key, value in session.items():
        at.session_state[key] = value
    return at.run(timeout=60)


def settle(at: AppTest) -> AppTest:
    """Wait for the background coding of the whole split (lsx.app.background), then rerun."""
    for future in list(background.results().futures.values()):
        future.result(timeout=120)
    return at.run(timeout=60)


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def upload_key(name: str, data: bytes) -> str:
    """The value the image picker gives an upload (lsx.app.atoms.image_choices)."""
    return f"upload:{name}:{hashlib.sha256(data).hexdigest()[:12]}"


def test_empty_state_says_what_to_do(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path, None)
    assert not at.exception
    assert "No trained runs" in texts(at.info)


def test_scvae_run_shows_usage_gallery_heatmaps_sparsity_comparison_and_segments(monkeypatch, root):
    at = page(monkeypatch, root, "tiny-scvae")
    assert not at.exception, at.exception
    assert "512 of 1,797 images" in at.markdown[0].value  # a per-class sample first
    assert "being coded in the background" in texts(at.info)
    at = settle(at)
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) >= {"Atoms used", "Dead atoms", "Perplexity", "Atoms per position (L0)"}
    assert "12 atoms" in at.markdown[0].value
    assert "1,797 images" not in at.markdown[0].value
    assert "7,188" in at.markdown[0].value  # 1797 images x 2x2 grid: the whole dataset
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # usage, co-activation, per class, L0, L1, comparison
    tables = [t.value for t in at.dataframe]
    comparison = next(t for t in tables if "kind" in t.columns)
    assert list(comparison["kind"]) == ["scvae", "vqvae"]
    per_class = next(t for t in tables if "mean L0" in t.columns)
    assert list(per_class["class"]) == [str(d) for d in range(10)]
    assert any("tiles" in c.value and "k = 4" in c.value for c in at.caption)
    at.slider(key=state.AT_K).set_value(3).run(timeout=60)
    assert not at.exception
    assert any("k = 3" in c.value for c in at.caption)


def test_vqvae_run_shows_code_usage(monkeypatch, root):
    at = page(monkeypatch, root, "tiny-vqvae")
    assert not at.exception
    assert not at.error
    labels = [m.label for m in at.metric]
    assert "Codes used" in labels
    assert "Dead codes" in labels
    assert "exactly one code per position" in texts(at.caption)


def test_other_kinds_get_a_message_and_still_segment(monkeypatch, root):
    at = page(monkeypatch, root, "tiny-ae")
    assert not at.exception
    assert not at.error
    assert "atom and code statistics need an `scvae` or `vqvae` run" in texts(at.info)
    assert any("tiles" in c.value for c in at.caption)


def test_uploads_get_per_file_messages_and_conversions(monkeypatch, root):
    at = page(monkeypatch, root, "tiny-scvae")
    rgb = np.random.default_rng(0).integers(0, 255, size=(40, 60, 3), dtype=np.uint8)
    at.file_uploader(key=state.AT_UPLOADS).set_value(
        [
            ("broken.png", b"definitely not a png", "image/png"),
            ("photo.png", png(rgb), "image/png"),
            ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        ]
    )
    at.run(timeout=60)
    assert not at.exception
    assert list(at.file_uploader(key=state.AT_UPLOADS).proto.type) == []  # reasons are shown
    assert "broken.png is not an image lsx can read" in texts(at.error)
    assert "drawing.svg has the type SVG (.svg); the Atoms page reads PNG" in texts(at.error)
    box = at.selectbox(key=state.AT_PHOTO)
    uploads = [c for c in box.options if "upload" in c]  # labels, e.g. "upload: photo.png"
    assert uploads == ["upload: photo.png"]  # the broken file is not offered
    box.set_value(upload_key("photo.png", png(rgb))).run(timeout=60)
    assert not at.exception
    assert "is RGB but the model expects greyscale" in texts(at.info)
    rgba = np.dstack([rgb, np.full((40, 60), 128, np.uint8)])
    at.file_uploader(key=state.AT_UPLOADS).set_value(("alpha.png", png(rgba), "image/png"))
    at.run(timeout=60)
    at.selectbox(key=state.AT_PHOTO).set_value(upload_key("alpha.png", png(rgba)))
    at.run(timeout=60)
    assert not at.exception
    assert "alpha.png: RGBA composited on white." in texts(at.info)


def test_an_upload_smaller_than_one_patch_is_an_error_not_a_crash(monkeypatch, root):
    at = page(monkeypatch, root, "tiny-scvae")
    tiny = np.zeros((3, 3), np.uint8)
    at.file_uploader(key=state.AT_UPLOADS).set_value(("dot.png", png(tiny), "image/png"))
    at.run(timeout=60)
    at.selectbox(key=state.AT_PHOTO).set_value(upload_key("dot.png", png(tiny))).run(timeout=60)
    assert not at.exception
    assert "smaller than one patch of this model (4x4 pixels" in texts(at.error)


def test_broken_weights_are_shown_as_an_error(monkeypatch, tmp_path):
    run = make_run(tmp_path, "scvae", n_atoms=12, **SPATIAL)
    (run / WEIGHTS_NAME).write_bytes(b"garbage")
    at = page(monkeypatch, tmp_path, "tiny-scvae")
    assert not at.exception
    assert at.error


def test_latent_map_colours_by_dominant_atom(monkeypatch, root):
    assert "atom" in color_options({"digit": ("0", "1")}, dominant_atom=True)
    assert "atom" not in color_options({"digit": ("0", "1")})
    assert color_label("atom") == "dominant atom"
    at = page(monkeypatch, root, "tiny-scvae", MAP_PAGE, **{state.LM_COLOR: "atom"})
    assert not at.exception, at.exception
    assert "coloured by dominant atom (of 12)" in texts(at.markdown)
    ae = page(monkeypatch, root, "tiny-ae", MAP_PAGE)
    assert "atom" not in ae.selectbox(key=state.LM_COLOR).options


DEMOS = Path(__file__).parents[2] / "checkpoints"


@pytest.mark.parametrize(
    ("run", "unit"), [("demo-scvae-mnist5k", "atom"), ("demo-vqvae-mnist5k", "code")]
)
def test_demo_runs_show_what_each_atom_does(monkeypatch, run, unit):
    """The gallery shows each atom's effect beside its top activating patches (issue #17, 8)."""
    if not (DEMOS / run / WEIGHTS_NAME).is_file():
        pytest.fail(f"the shipped demo run {run} is missing from checkpoints/")
    at = page(monkeypatch, DEMOS, run, **{state.AT_SPLIT: "test"})
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert at.radio(key=state.AT_GALLERY).value == "effect"
    assert f"when {unit} k is switched on at the centre cell" in texts(at.caption)
    assert "input patches that activate it most" in texts(at.caption)
    cards = next(im for im in at.get("image") if im.captions and f"{unit} " in im.captions[0])
    assert len(cards.captions) == 64  # one card per atom/code, most used first
    at = settle(at)
    assert not at.exception
    assert "every image" in at.markdown[0].value
