"""lsx.app.background: the projection worker's warm-up, queueing and progress records, and the
in-memory background results (issue #17 item 5). No UMAP here: the warm-up is replaced by a
function that waits on an event, so the order of work is checked without numba."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
import time

import pytest

from lsx.app import background
from lsx.app.background import FitProgress, Jobs, Results, describe


def test_a_fit_requested_during_the_warm_up_queues_behind_it(monkeypatch):
    release, order = threading.Event(), []

    def fake_warm_up():
        order.append("warm-up")
        assert release.wait(10)

    monkeypatch.setattr(background, "warm_up_umap", fake_warm_up)
    monkeypatch.setattr(background, "WARMUP_DELAY_S", 0.0)
    monkeypatch.setattr(background, "WARMUP_IDLE_S", 0.0)
    jobs = Jobs(warmup=True, busy=lambda: False)
    time.sleep(0.2)  # the warm-up has started
    job = jobs.job(("k",), lambda: False, lambda: order.append("fit"), method="umap", n_points=10)
    assert job is not None
    assert jobs.view(job).stage == "queued"
    assert "Waiting for the worker" in describe(jobs.view(job), "umap")
    time.sleep(0.2)
    assert order == ["warm-up"]  # the fit waits: one worker thread, warm-up first
    release.set()
    job.result(timeout=10)
    assert order == ["warm-up", "fit"]
    assert jobs.job(("k",), lambda: False, lambda: None) is None  # done: ready, not refitted
    assert "umap" in jobs.speed  # measured seconds per point, for the next estimate


def test_a_real_fit_before_the_warm_up_starts_skips_it(monkeypatch):
    monkeypatch.setattr(background, "warm_up_umap", lambda: pytest.fail("warm-up ran"))
    monkeypatch.setattr(background, "WARMUP_DELAY_S", 30.0)
    jobs = Jobs(warmup=True)
    job = jobs.job(("k",), lambda: False, lambda: "fitted", method="umap", n_points=10)
    assert job.result(timeout=5) == "fitted"  # did not wait the 30 s
    assert jobs.warmup.result(timeout=5) == 0.0


def test_the_warm_up_waits_until_no_page_has_run_for_a_while(monkeypatch):
    started, busy = threading.Event(), threading.Event()
    busy.set()  # a page view still running when the delay is over (a loaded machine)
    monkeypatch.setattr(background, "warm_up_umap", started.set)
    monkeypatch.setattr(background, "WARMUP_DELAY_S", 0.0)
    monkeypatch.setattr(background, "WARMUP_IDLE_S", 0.3)
    monkeypatch.setattr(background, "IDLE_CHECK_S", 0.02)
    jobs = Jobs(warmup=True, busy=busy.is_set)
    assert not started.wait(0.6)  # numba would hold the GIL during that page view
    busy.clear()
    assert started.wait(5)  # quiet for WARMUP_IDLE_S: now it runs
    assert jobs.warmup.result(timeout=5) >= 0.0


def test_a_real_fit_while_the_warm_up_waits_for_quiet_skips_it(monkeypatch):
    monkeypatch.setattr(background, "warm_up_umap", lambda: pytest.fail("warm-up ran"))
    monkeypatch.setattr(background, "WARMUP_DELAY_S", 0.0)
    monkeypatch.setattr(background, "IDLE_CHECK_S", 0.02)
    jobs = Jobs(warmup=True, busy=lambda: True)  # pages never quiet
    time.sleep(0.1)
    job = jobs.job(("k",), lambda: False, lambda: "fitted", method="umap", n_points=10)
    assert job.result(timeout=5) == "fitted"
    assert jobs.warmup.result(timeout=5) == 0.0


def test_pages_running_sees_streamlit_script_threads():
    assert not background.pages_running()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="ScriptRunner.scriptThread")
    thread.start()
    try:
        assert background.pages_running()
    finally:
        release.set()
        thread.join()
    assert not background.pages_running()


def test_no_warm_up_when_disabled(monkeypatch):
    monkeypatch.setattr(background, "warm_up_umap", lambda: pytest.fail("warm-up ran"))
    assert Jobs(warmup=False).warmup is None
    monkeypatch.setenv(background.WARMUP_ENV, "0")
    assert not background.warmup_enabled()
    monkeypatch.setenv(background.WARMUP_ENV, "1")
    assert background.warmup_enabled()


def test_progress_estimates_from_measured_epoch_speed():
    record = FitProgress("umap", 5000, None)
    record.update("neighbours")
    first = record.view()
    assert first.eta_s is None  # nothing measured yet: no made-up constant
    assert "no estimate yet" in describe(first, "umap")
    record.update("epochs", 0, 500)
    time.sleep(0.05)
    record.update("epochs", 100, 500)
    view = record.view()
    assert view.fraction == pytest.approx(0.2)
    assert 0 < view.eta_s <= 4 * view.elapsed_s  # 400 epochs left at the speed of the first 100
    text = describe(view, "umap")
    assert "epoch 100 of 500" in text
    assert "left (measured speed)" in text


def test_progress_before_the_epochs_uses_the_speed_of_earlier_fits():
    record = FitProgress("tsne", 1000, seconds_per_point=0.01)  # an earlier fit: 10 s / 1000
    record.update("fitting")
    view = record.view()
    assert 9.0 < view.eta_s <= 10.0
    assert "Fitting TSNE" in describe(view, "tsne")


def test_results_compute_once_and_keep_the_value():
    calls = []
    results = Results(max_entries=2)

    def compute():
        calls.append(1)
        return 42

    value, job = results.get("a", compute)
    if job is not None:
        job.result(timeout=10)
    value, job = results.get("a", compute)
    assert (value, job) == (42, None)
    assert calls == [1]
    for key in ("b", "c"):
        results.get(key, compute)[1].result(timeout=10)
    assert "a" not in results.futures  # bounded: the oldest finished entry went


def test_a_failed_result_is_computed_again():
    results = Results()
    _, job = results.get("x", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        job.result(timeout=10)
    value, job = results.get("x", lambda: 7)
    if job is not None:
        value = job.result(timeout=10)
    assert value == 7


TRIM_SCRIPT = """
import gc, threading
from lsx.app.background import release_memory
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
def work():
    # 2 kB blocks go through malloc (not pymalloc), in this thread's own arena, like a fit's
    keep = [bytes(2000) + bytes([i % 251]) for i in range(150_000)]
    del keep
    gc.collect()
t = threading.Thread(target=work)
t.start()
t.join()
before = rss_mb()
release_memory()
print(before, rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_memory_hands_a_worker_threads_freed_heap_back():
    """~300 MB freed by a worker thread stays in glibc's arena until release_memory trims it
    (what kept the server's RSS at its peak after the load bench's fits)."""
    out = subprocess.run(
        [sys.executable, "-c", TRIM_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before - after > 100, (before, after)
