"""Work the app does off the request path, and how a page shows it while it runs.

- :class:`Jobs`: the one projection worker (UMAP/t-SNE fits of datasets, stores and Compare),
  one thread per server process, so fits never compete for the cores and numba's JIT is paid
  once per process. Every fit gets a :class:`FitProgress` record (stage, epochs, ETA from the
  measured speed) that a page's polling fragment reads. The worker starts with a UMAP warm-up
  fit on the same code path as a real 5,000-point fit, once the server is quiet: at least
  ``WARMUP_DELAY_S`` after the first page view and after ``WARMUP_IDLE_S`` with no page script
  running (numba's compilation holds the GIL, so it would stall a page view that is still
  running on a loaded machine); a real fit requested before it starts skips it, one requested
  during it queues behind it (``$LSX_UMAP_WARMUP=0`` turns it off).
- :class:`Results`: small results computed in the background (the Atoms page's statistics over
  the whole split, the Consistency page's NLL) and kept in memory; the page shows a partial
  result meanwhile.
- :func:`wait_notice`: the "being computed" notice with real progress, polled every second.

The worker threads run lsx code only, never a Streamlit call (they have no ScriptRunContext).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis.projection import reporting_progress, warm_up_umap

WARMUP_ENV = "LSX_UMAP_WARMUP"  # "0": no warm-up fit at server start (the test suite sets it)
NICE = 5  # background threads yield the cores to page requests
WARMUP_DELAY_S = 12.0  # the warm-up waits this long, so first page views get the cores first
WARMUP_IDLE_S = 3.0  # ... and then until no page script has run for this long
IDLE_CHECK_S = 0.25
SCRIPT_THREAD = "ScriptRunner"  # Streamlit runs each page script in "ScriptRunner.scriptThread"
ICON = ":material/hourglass_top:"  # Streamlit ships this font; an emoji needs a system font


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc ``malloc_trim``); best effort elsewhere.

    A fit frees hundreds of MB in many small blocks spread over the worker thread's malloc arena;
    glibc keeps them mapped, so without this the server's RSS stays at its peak after a burst of
    fits although nothing holds the memory (measured by ``bench/load.py``).
    """
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        pass


def _lower_priority() -> None:
    """Renice the calling thread (Linux: a thread id is a PRIO_PROCESS target); best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # other platforms, or not permitted: run at normal priority
        pass


@dataclass(frozen=True)
class ProgressView:
    """What a page shows about one running fit."""

    stage: str  # "queued", "neighbours", "epochs", "fitting"
    done: int  # epochs done (stage "epochs")
    total: int  # epochs in all
    elapsed_s: float
    eta_s: float | None  # None: no measured speed yet

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class FitProgress:
    """Thread-safe progress record of one background fit, written by the worker thread."""

    def __init__(self, method: str, n_points: int, seconds_per_point: float | None) -> None:
        self.lock = threading.Lock()
        self.method, self.n_points = method, n_points
        self.expected_s = seconds_per_point * n_points if seconds_per_point and n_points else None
        self.stage, self.done, self.total = "queued", 0, 0
        self.started: float | None = None
        self.epochs_started: float | None = None

    def update(self, stage: str, done: int = 0, total: int = 0) -> None:
        """The callback of :func:`lsx.analysis.projection.reporting_progress`."""
        now = time.perf_counter()
        with self.lock:
            if self.started is None:
                self.started = now
            if stage == "epochs" and self.epochs_started is None:
                self.epochs_started = now
            self.stage, self.done, self.total = stage, done, total

    def view(self) -> ProgressView:
        now = time.perf_counter()
        with self.lock:
            elapsed = now - self.started if self.started is not None else 0.0
            eta = None
            if self.stage == "epochs" and self.done > 0 and self.epochs_started is not None:
                per_epoch = (now - self.epochs_started) / self.done  # measured on this fit
                eta = per_epoch * (self.total - self.done)
            elif self.expected_s is not None:  # measured on the previous fits of this server
                eta = max(self.expected_s - elapsed, 0.0)
            return ProgressView(self.stage, self.done, self.total, elapsed, eta)


def pages_running() -> bool:
    """Whether a page script (or a fragment) runs now in this server process."""
    return any(t.name.startswith(SCRIPT_THREAD) for t in threading.enumerate())


class Jobs:
    """The projection worker: one thread, one job per key, a progress record per job.

    ``busy`` says whether page requests are being served (default :func:`pages_running`): the
    warm-up waits until it has been false for ``WARMUP_IDLE_S``.
    """

    def __init__(self, warmup: bool = False, busy: Callable[[], bool] = pages_running) -> None:
        self.busy = busy
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lsx-projection", initializer=_lower_priority
        )
        self.futures: dict[tuple, Future] = {}
        self.ready: set[tuple] = set()
        self.progress: dict[Future, FitProgress] = {}
        self.speed: dict[str, float] = {}  # method -> seconds per point of the last real fit
        self.wake = threading.Event()  # set by the first real fit: the warm-up is skipped
        self.warmup: Future | None = self.pool.submit(self._warm_up) if warmup else None

    def _warm_up(self) -> float:
        """Wait ``WARMUP_DELAY_S``, then until no page has run for ``WARMUP_IDLE_S`` (numba's
        compilation holds the GIL, so it would stall a page view), then warm up; skipped when a
        real fit is requested first (it pays the JIT itself, and would only wait behind a
        warm-up)."""
        if self.wake.wait(WARMUP_DELAY_S):
            return 0.0
        idle_since = time.perf_counter()
        while time.perf_counter() - idle_since < WARMUP_IDLE_S:
            if self.busy():
                idle_since = time.perf_counter()
            if self.wake.wait(IDLE_CHECK_S):
                return 0.0
        start = time.perf_counter()
        warm_up_umap()
        return time.perf_counter() - start

    def _run(self, fit: Callable[[], Any], record: FitProgress) -> Any:
        start = time.perf_counter()
        try:
            with reporting_progress(record.update):
                out = fit()
        finally:
            release_memory()
        if record.n_points:
            with self.lock:
                self.speed[record.method] = (time.perf_counter() - start) / record.n_points
        return out

    def job(
        self,
        key: tuple,
        cached: Callable[[], bool],
        fit: Callable[[], Any],
        *,
        method: str = "",
        n_points: int = 0,
    ) -> Future | None:
        """None when ``key``'s result is ready; else its running job, started once per key.

        ``cached()`` looks on disk (outside the lock: it may read files); ``fit()`` computes and
        stores the result in the worker thread. A job that failed is started again by the next
        call; one that finished marks the key ready (the caller then reads the result, or
        computes it on the request path if it could not be stored). ``method`` and
        ``n_points`` let the progress record estimate the time from earlier fits.
        """
        with self.lock:
            if key in self.ready:
                return None
            future = self.futures.get(key)
            if future is not None and not future.done():
                return future
            if future is not None and future.exception() is None:
                self.ready.add(key)
                self.progress.pop(self.futures.pop(key), None)
                return None
        hit = cached()
        with self.lock:
            if hit:
                self.ready.add(key)
                old = self.futures.pop(key, None)
                self.progress.pop(old, None)
                return None
            future = self.futures.get(key)
            if future is None or future.done():
                self.progress.pop(future, None)
                record = FitProgress(method, n_points, self.speed.get(method))
                self.wake.set()  # a warm-up still waiting to start is skipped
                future = self.pool.submit(self._run, fit, record)
                self.futures[key] = future
                self.progress[future] = record
            return future

    def view(self, future: Future) -> ProgressView | None:
        """Progress of a job this worker runs (None for a future it does not know)."""
        with self.lock:
            record = self.progress.get(future)
        return None if record is None else record.view()


def warmup_enabled() -> bool:
    """Whether a new projection worker starts with the UMAP warm-up (``$LSX_UMAP_WARMUP``)."""
    return os.environ.get(WARMUP_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _then_release(compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    finally:
        release_memory()


class Results:
    """Small results computed in one background thread and kept in memory (LRU)."""

    def __init__(self, max_entries: int = 32) -> None:
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lsx-results", initializer=_lower_priority
        )
        self.futures: OrderedDict[Hashable, Future] = OrderedDict()
        self.max_entries = max_entries

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, Future | None]:
        """``(result, None)`` when ``key`` is done; else ``(None, its job)``, started once.

        A failed job is started again by the next call (its error is shown by the poller).
        """
        with self.lock:
            future = self.futures.get(key)
            if future is None or (future.done() and future.exception() is not None):
                future = self.pool.submit(_then_release, compute)
                self.futures[key] = future
            self.futures.move_to_end(key)
            while len(self.futures) > self.max_entries:
                oldest = next(iter(self.futures))
                if not self.futures[oldest].done():
                    break
                del self.futures[oldest]
        if future.done() and future.exception() is None:
            return future.result(), None
        return None, future


@st.cache_resource(show_spinner=False)
def results() -> Results:
    """The one background thread of the app's heavy metrics (shared by every session)."""
    return Results()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def describe(view: ProgressView | None, method: str) -> str:
    """One line of progress: the stage, epochs done, elapsed time and the estimate."""
    if view is None or view.stage == "queued":
        return (
            "Waiting for the worker (a fit started earlier, or the server's warm-up, runs first)."
        )
    if view.stage == "epochs":
        text = f"Optimising the layout: epoch {view.done} of {view.total}"
    elif view.stage == "neighbours":
        text = "Finding nearest neighbours and building the graph"
    else:
        text = f"Fitting {method.upper()}"
    text += f" · {_duration(view.elapsed_s)} so far"
    if view.eta_s is not None:
        return text + f" · about {_duration(view.eta_s)} left (measured speed)"
    return text + " · no estimate yet (the first fit of this server also compiles numba)"


def wait_notice(
    jobs: Sequence[Future],
    intro: str,
    *,
    label: str,
    progress: Callable[[Future], ProgressView | None] | None = None,
) -> None:
    """Say what is being computed in the background, with progress, and rerun the page when
    every job in ``jobs`` is done (a fragment polls every second; other sessions never wait).

    Parameters
    ----------
    jobs : futures of the background work
    intro : what is computed and what the page shows meanwhile (one or two sentences)
    label : the method or metric, for the progress line and the error message
    progress : how to read a job's :class:`ProgressView` (e.g. ``Jobs.view``); None: elapsed
        time only
    """
    started = time.perf_counter()

    @st.fragment(run_every="1s")
    def _poll() -> None:
        if all(job.done() for job in jobs):
            failed = [job.exception() for job in jobs if job.exception() is not None]
            if failed:
                st.error(f"{label} failed: {failed[0]}. Change the settings to try again.")
                return
            st.rerun(scope="app")
        pending = [job for job in jobs if not job.done()]
        view = progress(pending[0]) if progress and pending else None  # one worker: in order
        if progress is None:
            line = f"Computing {label} · {_duration(time.perf_counter() - started)} so far"
        else:
            line = describe(view, label)
        if progress is not None and len(jobs) > 1:  # fits run one after the other
            line = f"Fit {len(jobs) - len(pending) + 1} of {len(jobs)} · {line}"
        st.info(f"{intro}\n\n{line}", icon=ICON)
        if view is not None and view.total:
            st.progress(float(np.clip(view.fraction, 0.0, 1.0)))

    _poll()
