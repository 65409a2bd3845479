"""AppTest of the Large datasets page: encode a dataset into a latent store from the app (a real
``python -m lsx encode`` subprocess), see it listed, and get messages for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lsx.app import large_datasets, state
from lsx.app.cache import THREADS_ENV
from lsx.latents.store import open_store
from tests.app.test_latent_map_page import make_run
from tests.waiting import wait_until

PAGE = str(Path(__file__).parents[2] / "pages" / "8_large_datasets.py")


def page(monkeypatch: pytest.MonkeyPatch, root: Path, run_dir: Path) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[state.RUN_DIR] = str(run_dir)
    return at.run(timeout=60)


def wait_for(
    run_dir: Path, states: tuple[str, ...], timeout: float = 90.0
) -> large_datasets.EncodeJob:
    def reached() -> large_datasets.EncodeJob | None:
        jobs = large_datasets.encode_jobs(run_dir)
        return jobs[0] if jobs and jobs[0].state in states else None

    return wait_until(reached, timeout, every=0.3, what=f"an encode job in {states}")


def submit(at: AppTest, spec: str) -> AppTest:
    at.text_input(key=large_datasets.ST_SPEC).set_value(spec)
    next(b for b in at.button if "Encode" in b.label).click()
    return at.run(timeout=60)


def test_encode_from_the_app_lists_the_store(monkeypatch, tmp_path):
    run_dir = make_run(tmp_path)
    at = page(monkeypatch, tmp_path, run_dir)
    assert not at.exception
    assert any("no latent store" in i.value for i in at.info)
    spec = at.text_input(key=large_datasets.ST_SPEC).value
    assert spec == "digits"  # the run's own data by default
    at = submit(at, "digits")
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    job = wait_for(run_dir, ("done", "failed"))
    assert job.state == "done", job.log_tail
    assert (job.rows_done, job.n) == (1797, 1797)
    store = open_store(job.store_dir)
    assert store.z.shape == (1797, 3)
    at = page(monkeypatch, tmp_path, run_dir)
    table = at.dataframe[0].value
    assert list(table["points"]) == [1797]
    assert "ready" in table["status"][0]
    assert not at.exception
    # the page names the Latent map control the user must look for by its real label
    lm = AppTest.from_file(str(Path(PAGE).parent / "2_latent_map.py"), default_timeout=60)
    lm.session_state[state.RUN_DIR] = str(run_dir)
    lm.run(timeout=60)
    source = next(s for s in lm.sidebar.selectbox if s.key == state.LM_SOURCE)
    assert f"sidebar: {source.label})" in table["status"][0]
    assert any(f"(sidebar: **{source.label}**)" in m.value for m in at.markdown)


def test_bad_specs_get_messages_and_the_page_keeps_serving(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    run_dir = make_run(tmp_path)
    at = page(monkeypatch, tmp_path, run_dir)
    at = submit(at, f"npy:{tmp_path / 'missing.npy'}")
    assert not at.exception
    assert "missing.npy" in at.error[0].value
    # images of the wrong size: the subprocess fails and the page shows why
    np.save(tmp_path / "big.npy", np.zeros((50, 16, 16), dtype=np.uint8))
    at = submit(at, f"npy:{tmp_path / 'big.npy'}")
    assert not at.exception
    job = wait_for(run_dir, ("failed", "done"))
    assert job.state == "failed"
    assert "16" in job.message, job.message
    at = page(monkeypatch, tmp_path, run_dir)
    assert not at.exception


def test_sources_outside_the_data_roots_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path / "data"))
    run_dir = make_run(tmp_path / "runs")
    outside = tmp_path / "elsewhere.npy"
    np.save(outside, np.zeros((20, 8, 8), dtype=np.uint8))
    at = page(monkeypatch, tmp_path / "runs", run_dir)
    for spec in (f"npy:{outside}", f"npy:{tmp_path / 'missing.npy'}", "folder:/etc"):
        at = submit(at, spec)
        assert not at.exception
        assert "reads datasets only from its data folders" in at.error[0].value
    assert large_datasets.encode_jobs(run_dir) == []
    assert large_datasets.run_data_spec(run_dir) == "digits"  # a built-in: never a path check


def test_a_second_encode_of_the_same_store_is_refused_while_running(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    run_dir = make_run(tmp_path)
    rng = np.random.default_rng(0)
    path = tmp_path / "many.npy"
    np.save(path, rng.integers(0, 255, size=(400_000, 8, 8), dtype=np.uint8))
    store_dir = large_datasets.start_encode(run_dir, f"npy:{path}", "all", 256, 0)
    try:
        with pytest.raises(Exception, match="already being encoded"):
            large_datasets.start_encode(run_dir, f"npy:{path}", "all", 256, 0)
    finally:
        job = next(j for j in large_datasets.encode_jobs(run_dir) if j.store_dir == store_dir)
        large_datasets.stop_encode(job)
    job = wait_for(run_dir, ("stopped", "done", "failed"))
    assert job.state == "stopped", job.log_tail  # stopped on request: not shown as a failure
    assert "resume" in job.message
