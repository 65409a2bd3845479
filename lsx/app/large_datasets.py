"""The Large datasets page: a run's latent stores, and encoding new ones off the request path.

Encoding a large dataset takes minutes, so it runs as ``python -m lsx encode`` in a subprocess
started by the job runner (:mod:`lsx.jobs`, as training does, :mod:`lsx.app.train_jobs`, sharing
its registry of this server's children): the page starts it, shows its progress from the store's
own ``manifest.json`` (``rows_done``, written atomically by :mod:`lsx.latents`) and can stop it; a
stopped encode resumes where it stopped when started again. The encoder holds the store folder's
:class:`lsx.files.FolderLock`, so a second encode of the same store is refused here while that
lock is held, while this server's child runs, or while the recorded job's process still runs.
Job files live in ``<run>/stores/.jobs/<store>.json`` beside the log ``<store>.log``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from lsx import jobs
from lsx.app.train_jobs import registry
from lsx.data.lazy import LAZY_PREFIXES, SPLITS, open_source
from lsx.errors import ConfigError, LsxError
from lsx.files import atomic_write_json, lock_holder
from lsx.latents.store import MANIFEST_NAME, store_dir_for, stores_root
from lsx.paths import app_data_path

JOBS_DIR = ".jobs"
LOG_LINES = 30
# session keys of this page (module-local: no other page reads them)
ST_SPEC, ST_SPLIT, ST_BATCH, ST_WORKERS = "st_spec", "st_split", "st_batch", "st_workers"


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
    return stores_root(run_dir) / JOBS_DIR


def _job(record: dict[str, Any]) -> jobs.Job:
    """The runner's view of an encode's job file: its process is ``lsx encode`` of its spec."""
    match = ("lsx", "encode", str(record.get("spec", "")))
    return jobs.Job.from_record(record, match=match, key=str(record.get("store", "")))


def _alive(record: dict[str, Any]) -> bool:
    """Whether the job's process still runs (a child of this server is polled, not guessed; any
    other PID counts only while its command line is still this encode)."""
    return jobs.alive(_job(record), registry())[0]


def running_job(run_dir: Path, store_dir: Path) -> dict[str, Any] | None:
    job = jobs.read_json(_jobs_dir(run_dir) / f"{store_dir.name}.json")
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
    if spec.startswith(LAZY_PREFIXES) and spec != run_data_spec(run_dir):
        # a path typed into the app: inside a data root only (the run's own data is allowed)
        prefix, path = spec.split(":", 1)
        spec = f"{prefix}:{app_data_path(path)}"
    source = open_source(spec)  # fails here, with its message, on a bad spec or empty folder
    store_dir = store_dir_for(run_dir, source.spec, split)
    folder = _jobs_dir(run_dir)
    reg = registry()

    def check() -> None:  # under the registry's lock: one start at a time in this server
        busy = reg.running_pid(str(store_dir)) is not None or lock_holder(store_dir) is not None
        if busy or running_job(run_dir, store_dir) is not None:
            raise ConfigError(f"{store_dir.name} is already being encoded; wait or stop it first.")
        folder.mkdir(parents=True, exist_ok=True)

    cmd = jobs.python_command("encode", "--run", str(run_dir), "--data", spec, "--split", split)
    cmd += ["--batch-size", str(int(batch_size)), "--workers", str(int(workers))]
    jobs.start(
        cmd, key=str(store_dir), log=folder / f"{store_dir.name}.log", registry=reg,
        match=("lsx", "encode", spec), job_file=folder / f"{store_dir.name}.json",
        extra={"spec": spec, "split": split, "store": str(store_dir)}, check=check,
        what="the encode process",
    )  # fmt: skip
    return store_dir


def stop_encode(job: EncodeJob) -> bool:
    """SIGTERM the encode; the store keeps its rows so far and resumes when started again."""
    path = _jobs_dir(job.store_dir.parents[1]) / f"{job.store_dir.name}.json"
    record = jobs.read_json(path) or {}
    runner_job = _job({**record, "pid": job.pid, "store": str(job.store_dir), "spec": job.spec})
    if job.state != "running" or not jobs.alive(runner_job, registry())[0]:
        return False
    atomic_write_json(path, {**record, "stop_requested": time.time()})  # "stopped", not "failed"
    return jobs.stop(runner_job, registry())


def encode_jobs(run_dir: Path) -> list[EncodeJob]:
    """Every encode started from the app for this run, newest first."""
    folder = _jobs_dir(run_dir)
    out = []
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files if folder.is_dir() else []:
        job = jobs.read_json(path)
        if job is None:
            continue
        store_dir = Path(str(job.get("store", "")))
        manifest = jobs.read_json(store_dir / MANIFEST_NAME) or {}
        done, n = int(manifest.get("rows_done", 0)), int(manifest.get("n", 0))
        log = jobs.tail(path.with_suffix(".log"), LOG_LINES)
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
                    "status": "ready: open it on the Latent map (sidebar: Map of)",
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
    encodes = encode_jobs(Path(run_dir))
    if not encodes:
        st.caption("No encode started from the app for this run yet.")
        return
    for job in encodes:
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
