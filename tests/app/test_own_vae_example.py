"""The worked example of docs/own-model.md, end to end: examples/own_vae installed as pip would
install it (its pyproject's entry point, read from the file), its notebook run headless in a
real kernel (plain PyTorch training -> lsx.wrap -> lsx.notebook widget -> decoded grid ->
lsx.export_run), then the exported run listed and opened on the app's Latent map page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import list_runs
from tests.notebooks import run_notebook
from tests.plugin_site import EXAMPLE, example_site, installed

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = EXAMPLE / "own_vae.ipynb"
LATENT_MAP = str(ROOT / "pages" / "2_latent_map.py")
RUN = "own-vae-mnist5k"


def test_own_vae_notebook_exports_a_run_the_app_opens(monkeypatch, tmp_path):
    runs = tmp_path / "runs"
    paths = example_site(tmp_path)
    with installed(monkeypatch, *paths):  # sys.path here, PYTHONPATH for the kernel
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.environ["PYTHONPATH"], str(ROOT)]))
        monkeypatch.setenv(state.CHECKPOINTS_ENV, str(runs))
        _, outputs = run_notebook(NOTEBOOK, tmp_path, timeout=300)  # fails on any error
        mimes = [set(out.get("data", {})) for out in outputs]
        assert sum("application/vnd.jupyter.widget-view+json" in m for m in mimes) == 1
        assert any("image/png" in m for m in mimes)  # the decoded selection
        text = "".join(out.get("text", "") for out in outputs)
        assert "epoch 3/3" in text
        assert f"exported to {runs / RUN}" in text
        # the exported run: listed, and mapped by the Latent map page like a built-in kind's
        (info,), skipped = list_runs(runs)
        assert (info.name, info.kind, info.dataset) == (RUN, "ownvae", "mnist5k")
        assert not skipped
        monkeypatch.setenv(THREADS_ENV, "1")
        at = AppTest.from_file(LATENT_MAP, default_timeout=120)
        at.session_state[state.RUN_DIR] = str(runs / RUN)
        at.run(timeout=120)
        assert not at.exception
        assert not at.error
        assert any(m.value.startswith("Showing **5,000**") for m in at.markdown)
        assert at.get("plotly_chart")


def test_the_example_trains_from_its_own_script(monkeypatch, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "own_vae.train", "--epochs", "1", "--out", str(tmp_path / "w.st")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1: loss" in proc.stdout
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "w.st")  # safetensors, not a pickle
    assert weights["to_mu.weight"].shape == (8, 64 * 7 * 7)
