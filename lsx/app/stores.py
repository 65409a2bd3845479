"""The Large datasets page: a run's latent stores, and encoding new ones off the request path.

Encoding a large dataset takes minutes, so it runs as ``python -m lsx encode`` in a subprocess
(like training, :mod:`lsx.app.training`): the page starts it, shows its progress from the store's
own ``manifest.json`` (``rows_done``, written atomically by :mod:`lsx.latents`) and can stop
it; a stopped encode resumes where it stopped when started again. Job files live in
``<run>/stores/.jobs/<store>.json`` beside the log ``<store>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from lsx.data.lazy import SPLITS, open_source
from lsx.errors import ConfigError, LsxError
from lsx.files import atomic_write_json
from lsx.jobs import command_has, pid_alive
from lsx.latents.store import MANIFEST_NAME, STORES_DIR, store_dir_for

JOBS_DIR = ".jobs"
LOG_LINES = 30
REPO_ROOT = Path(__file__).resolve().parents[2]
# session keys of this page (module-local: no other page reads them)
ST_SPEC, ST_SPLIT, ST_BATCH, ST_WORKERS = "st_spec", "st_split", "st_batch", "st_workers"
_procs: dict[str, subprocess.Popen] = {}  # this server's children, polled so none is a zombie


@dataclass(frozen=True)
class EncodeJob:
    """One encode started from the app, as read from its job file, log and store manifest."""

    store_dir: Path
    spec: str
    split: str
    pid: int
    state: str  # running | done | stopped | failed
    rows_done: int
    n: int
    message: str
    log_tail: str

    @property
    def fraction(self) -> float:
        return self.rows_done / self.n if self.n else 0.0


def _jobs_dir(run_dir: Path) -> Path:
    return Path(run_dir) / STORES_DIR / JOBS_DIR


def _read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    return None


def _alive(job: Mapping[str, Any]) -> bool:
    """Whether the job's process still runs (a child of this server is polled, not guessed)."""
    proc = _procs.get(str(job.get("store")))
    if proc is not None and proc.pid == job.get("pid"):
        return proc.poll() is None
    return bool(job.get("pid")) and pid_alive(int(job["pid"])) and _is_encoder(int(job["pid"]))


def _is_encoder(pid: int) -> bool:
    """The PID is an ``lsx encode`` process (a recycled PID must not be signalled); without
    /proc (macOS) the PID is trusted."""
    return command_has(pid, "lsx", "encode") is not False


def running_job(run_dir: Path, store_dir: Path) -> dict[str, Any] | None:
    job = _read_json(_jobs_dir(run_dir) / f"{store_dir.name}.json")
    return job if job is not None and _alive(job) else None


def start_encode(run_dir: Path, spec: str, split: str, batch_size: int, workers: int) -> Path:
    """Start ``python -m lsx encode`` for ``spec`` and return the store folder it writes.

    Raises
    ------
    LsxError
        The spec cannot be opened (the message says why), a bad split/batch size, or an encode
        of the same store is already running.
    """
    spec = spec.strip()
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    if not 1 <= int(batch_size) <= 65_536 or not 0 <= int(workers) <= 64:
        raise ConfigError("Batch size must be in [1, 65536] and workers in [0, 64].")
    source = open_source(spec)  # fails here, with its message, on a bad spec or empty folder
    store_dir = store_dir_for(run_dir, source.spec, split)
    if running_job(run_dir, store_dir) is not None:
        raise ConfigError(f"{store_dir.name} is already being encoded; wait or stop it first.")
    jobs = _jobs_dir(run_dir)
    jobs.mkdir(parents=True, exist_ok=True)
    log_path = jobs / f"{store_dir.name}.log"
    cmd = [sys.executable, "-m", "lsx", "encode", "--run", str(run_dir), "--data", spec]
    cmd += ["--split", split, "--batch-size", str(int(batch_size)), "--workers", str(int(workers))]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _procs[str(store_dir)] = proc
    job = {"pid": proc.pid, "spec": spec, "split": split, "store": str(store_dir)}
    atomic_write_json(jobs / f"{store_dir.name}.json", {**job, "started": time.time()})
    return store_dir


def stop_encode(job: EncodeJob) -> bool:
    """SIGTERM the encode; the store keeps its rows so far and resumes when started again."""
    if job.state != "running" or not _is_encoder(job.pid):
        return False
    path = _jobs_dir(job.store_dir.parents[1]) / f"{job.store_dir.name}.json"
    record = _read_json(path) or {}
    atomic_write_json(path, {**record, "stop_requested": time.time()})  # "stopped", not "failed"
    with contextlib.suppress(ProcessLookupError):
        os.kill(job.pid, signal.SIGTERM)
    return True


def _tail(path: Path, n: int = LOG_LINES) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    return ""


def encode_jobs(run_dir: Path) -> list[EncodeJob]:
    """Every encode started from the app for this run, newest first."""
    jobs = _jobs_dir(run_dir)
    out = []
    files = sorted(jobs.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files if jobs.is_dir() else []:
        job = _read_json(path)
        if job is None:
            continue
        store_dir = Path(str(job.get("store", "")))
        manifest = _read_json(store_dir / MANIFEST_NAME) or {}
        done, n = int(manifest.get("rows_done", 0)), int(manifest.get("n", 0))
        log = _tail(path.with_suffix(".log"))
        alive = _alive(job)
        if alive:
            state, message = "running", ""
        elif manifest.get("complete") and done == n:
            state, message = "done", log.splitlines()[-1] if log else ""
        elif done or job.get("stop_requested"):
            state = "stopped"
            message = f"stopped at {done:,} of {n or '?'} rows; start it again to resume"
        else:
            state, message = "failed", _last_error(log)
        out.append(
            EncodeJob(store_dir, str(job.get("spec")), str(job.get("split")),
                      int(job.get("pid", 0)), state, done, n, message, log)
        )  # fmt: skip
    return out


def _last_error(log: str) -> str:
    lines = [ln for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error") or "Error" in ln]
    return (errors or lines or ["the encode stopped before writing any row (no log)"])[-1]


def store_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """One table row per store folder: usable ones with their size, others with the reason."""
    from lsx.app.cache import store_entries

    rows = []
    for e in store_entries(run_dir):
        if e.reason is None:
            rows.append(
                {
                    "store": e.name,
                    "data": e.spec,
                    "split": e.split,
                    "points": e.n,
                    "dims": e.dim,
                    "MB on disk": round(_size_mb(Path(e.path)), 1),
                    "status": "ready: open it on the Latent map (Source)",
                }
            )
        else:
            rows.append({"store": e.name, "status": e.reason})
    return rows


def run_data_spec(run_dir: str | Path) -> str:
    """The dataset the run was trained on (the form's default); CheckpointError if unreadable."""
    from lsx.checkpoint import read_header

    return str(read_header(Path(run_dir)).get("data", {}).get("spec", ""))


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# ------------------------------------------------------------------------------ widgets


def encode_form(run_dir: str | Path, default_spec: str) -> None:
    """Dataset spec, split, batch size and workers, and the Encode button."""
    st.session_state.setdefault(ST_SPEC, default_spec)
    with st.form("encode"):
        st.text_input(
            "Dataset",
            key=ST_SPEC,
            help="A built-in name (digits, mnist5k, ...), npy:/path/images.npy (uint8 or float32 "
            "images, optional images.labels.npy beside it) or folder:/path (one subfolder per "
            "class). Images must have the run's input shape.",
        )
        left, mid, right = st.columns(3)
        left.selectbox("Split", SPLITS, key=ST_SPLIT)
        mid.number_input("Batch size", 1, 65_536, 1024, key=ST_BATCH)
        help_workers = "DataLoader workers that decode images (useful for image folders)"
        right.number_input("Reader processes", 0, 64, 0, key=ST_WORKERS, help=help_workers)
        submitted = st.form_submit_button("Encode into a store", type="primary")
    if submitted:
        try:
            store_dir = start_encode(
                Path(run_dir),
                st.session_state[ST_SPEC],
                st.session_state[ST_SPLIT],
                int(st.session_state[ST_BATCH]),
                int(st.session_state[ST_WORKERS]),
            )
        except LsxError as err:
            st.error(str(err))
        else:
            st.success(f"Encoding into `{store_dir.name}` in the background.")


@st.fragment(run_every=1.0)
def jobs_panel(run_dir: str) -> None:
    """Progress of this run's encodes; refreshes itself every second."""
    jobs = encode_jobs(Path(run_dir))
    if not jobs:
        st.caption("No encode started from the app for this run yet.")
        return
    for job in jobs:
        label = f"`{job.store_dir.name}` · {job.spec} ({job.split}) · **{job.state}**"
        st.progress(min(job.fraction, 1.0), text=f"{label} · {job.rows_done:,}/{job.n:,} rows")
        if job.state == "running" and st.button("Stop", key=f"stop-{job.store_dir.name}"):
            stop_encode(job)
        elif job.state == "failed":
            st.error(job.message)
        elif job.message:
            st.caption(job.message)
        with st.expander("Log"):
            st.code(job.log_tail or "(empty)", language=None)
