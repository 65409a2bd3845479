"""examples/quickstart.ipynb runs headless in a real Jupyter kernel (nbclient + ipykernel) and
fails on any error: demo run -> embed -> project -> widget -> selection -> decode."""

from __future__ import annotations

import os
from pathlib import Path

from tests.notebooks import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    # the kernel starts in an empty folder; it imports this clone's lsx (installed or not)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    nb, outputs = run_notebook(NOTEBOOK, tmp_path, timeout=180)  # fails on any error
    mimes = [set(out.get("data", {})) for out in outputs]
    widgets = [m for m in mimes if "application/vnd.jupyter.widget-view+json" in m]
    assert len(widgets) == 2  # the map, shown twice (label colours, then error colours)
    assert any("image/png" in m for m in mimes)  # the decoded grid
    # the widget's state went through the kernel's comm: its ESM is the shipped file
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    esm = [s["state"].get("_esm", "") for s in state.get("state", {}).values()]
    assert any("export default { render }" in text for text in esm)
