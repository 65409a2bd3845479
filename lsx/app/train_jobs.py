"""The Train page's jobs: ``python -m lsx train`` in a subprocess per run, and what it is doing.

A job is ``python -m lsx train ... --no-progress`` (the CLI's own code) started by the job runner
(:mod:`lsx.jobs`) in its own session, its stdout and stderr going to ``<run_dir>/train.log``, its
record to ``<run_dir>/job.json``. The page never trains in the script thread, so reruns, other
pages and other users stay responsive, and a job survives the browser tab that started it.

One job per run folder: the trainer holds :class:`lsx.files.FolderLock` on the run folder while it
trains. Before starting, the app refuses a run folder whose lock is held
(:func:`lsx.files.lock_holder`) or whose recorded job still runs (its PID alive with its command
line); within this server process the job registry refuses a second start of the same run under
its lock, also in the moment before the new trainer takes the folder lock. The app writes no lock
file of its own.

The live view (:mod:`lsx.app.train_page`) reads :func:`job_view`: ``status.json`` (state, epoch,
step, loss, written atomically by the trainer), the job record and the log. Cancel sends SIGTERM:
the trainer finishes the step, saves, writes status "stopped" (the run stays out of the
checkpoint picker until resumed and completed, lsx.checkpoint.list_runs).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import streamlit as st

from lsx import jobs
from lsx.app.train_form import TrainRequest
from lsx.checkpoint import CONFIG_NAME, STATUS_NAME, TRAIN_STATE_NAME, read_status
from lsx.errors import ConfigError, TrainingError
from lsx.files import lock_holder

LOG_NAME = "train.log"
JOB_NAME = "job.json"
DONE_STATES = ("completed", "early_stopped")
ACTIVE_STATES = ("starting", "running", "stopping")
LOG_LINES = 200
# what a full disk or a file-size limit looks like in a traceback (OSError errno 28 / 27, or a
# short write inside torch.save's zip writer)
DISK_FULL_SIGNS = ("[Errno 28]", "[Errno 27]", "No space left", "File too large", "unexpected pos")
HEADLINES: Mapping[str, str] = MappingProxyType(
    {
        "starting": ":material/hourglass_top: starting",
        "running": ":material/sync: running",
        "stopping": ":material/pause_circle: stopping (saving a checkpoint)",
        "completed": ":material/check_circle: completed",
        "early_stopped": ":material/check_circle: stopped early (no better test loss)",
        "stopped": ":material/stop_circle: stopped",
        "failed": ":material/error: failed",
        "crashed": ":material/error: crashed",
        "none": "no job",
    }
)

JobRegistry = jobs.Registry  # the name this module used before the runner moved to lsx.jobs


@st.cache_resource(show_spinner=False)
def registry() -> jobs.Registry:
    """The one job registry of this server process (shared by every session, and by the Large
    datasets page's encodes)."""
    return jobs.Registry()


def _match(run_dir: Path) -> tuple[str, ...]:
    """Words of a training command line for this run (a recycled PID lacks them)."""
    return ("lsx", "train", Path(run_dir).name)


def recorded_job(run_dir: Path) -> jobs.Job | None:
    """The run's job record (``job.json``), None when it has none."""
    record = jobs.read_json(Path(run_dir) / JOB_NAME)
    if record is None:
        return None
    return jobs.Job.from_record(record, match=_match(run_dir), key=str(run_dir))


# ------------------------------------------------------------------------------ start, cancel


def _check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise TrainingError(
            f"The checkpoints folder {root} cannot be written ({err.strerror or err}). Nothing "
            "was started. Free some space or fix its permissions, or point LSX_CHECKPOINTS at a "
            "writable folder and restart the app."
        ) from err


def busy_pid(run_dir: Path, reg: jobs.Registry) -> int | None:
    """Who is training ``run_dir``: this server's running child, the holder of the run folder's
    lock (-1 while it has not written its PID yet), or the live process of the job record;
    None when nobody is."""
    run_dir = Path(run_dir)
    pid = reg.running_pid(str(run_dir))
    if pid is None:
        pid = lock_holder(run_dir)
    if pid is None:
        job = recorded_job(run_dir)
        if job is not None and reg.poll(str(run_dir), job.pid) is None and jobs.alive(job)[0]:
            pid = job.pid
    return pid


def check_free(run_dir: Path, reg: jobs.Registry) -> None:
    """Refuse (TrainingError) when :func:`busy_pid` names a process."""
    pid = busy_pid(run_dir, reg)
    if pid is not None:
        raise TrainingError(
            f"{run_dir} is being trained already (process {pid if pid > 0 else 'starting'}), "
            "perhaps from another browser tab. Watch it below, stop it, or choose another run name."
        )


def start_job(request: TrainRequest, *, preexec_fn: Callable[[], None] | None = None) -> Path:
    """Start ``python -m lsx train`` for ``request`` in a subprocess; return its run folder.

    Parameters
    ----------
    request : TrainRequest
        From :func:`lsx.app.train_form.prepare_request` or ``resume_request``.
    preexec_fn : callable or None
        Run in the child before exec (tests use it to set resource limits).

    Raises
    ------
    TrainingError
        The checkpoints folder cannot be written, the run folder is busy, or the process could
        not be started.
    ConfigError
        A new run's folder already holds a run.
    """
    run_dir = request.run_dir
    _check_writable(request.root)
    reg = registry()

    def check() -> None:  # under the registry's lock: one start at a time in this server
        if not request.resume and (run_dir / CONFIG_NAME).exists():
            raise ConfigError(
                f"{run_dir} already holds a run; lsx never overwrites one. Choose another name."
            )
        run_dir.mkdir(exist_ok=True)
        check_free(run_dir, reg)

    jobs.start(
        request.argv(), key=str(run_dir), log=run_dir / LOG_NAME, registry=reg,
        match=_match(run_dir), job_file=run_dir / JOB_NAME, extra=lambda: _job_fields(request),
        check=check, append=True, header=True, preexec_fn=preexec_fn,
        what="the training process", error=TrainingError,
    )  # fmt: skip
    return run_dir


def _job_fields(request: TrainRequest) -> dict[str, Any]:
    """What the live view needs beyond the runner's record: the progress at the start (for the
    ETA), whether it resumes, and the class names (a resume keeps the first job's)."""
    run_dir = request.run_dir
    status = read_status(run_dir) if request.resume else {}
    epochs = status.get("epochs") or 1
    start = min(1.0, float(status.get("epoch", 0)) / float(epochs)) if request.resume else 0.0
    fields: dict[str, Any] = {"start_fraction": start, "resume": request.resume}
    if request.class_names or not request.resume:
        fields["class_names"] = list(request.class_names)
    else:
        fields["class_names"] = (jobs.read_json(run_dir / JOB_NAME) or {}).get("class_names", [])
    return fields


def cancel_job(run_dir: Path) -> bool:
    """Send SIGTERM to the run's training process; True when one was signalled.

    The trainer finishes the current step, saves a checkpoint and writes status "stopped". A
    process started elsewhere (another server, a terminal) is signalled only while its command
    line is still this run's training.
    """
    run_dir = Path(run_dir)
    reg = registry()
    job = recorded_job(run_dir) or jobs.Job(0, _match(run_dir), str(run_dir))
    with reg.lock:
        if jobs.stop(jobs.Job(0, job.match, job.key), reg):  # this server's child, if it runs
            return True
    pid = lock_holder(run_dir)
    for candidate in {p for p in (job.pid, pid) if p and p > 0}:
        if jobs.stop(jobs.Job(candidate, job.match, ""), None):  # started elsewhere
            reg.cancelled.add(str(run_dir))
            return True
    return False


# ------------------------------------------------------------------------------ job state


@dataclass(frozen=True)
class JobView:
    """What the live view shows about one run folder's job.

    ``state`` is one of ``starting running stopping completed early_stopped stopped failed
    crashed`` or ``none`` (no job and no status).
    """

    run_dir: Path
    state: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    fraction: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    message: str = ""
    error: str | None = None
    resumable: bool = False

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    def progress_text(self) -> str:
        """``"epoch 3/20 · step 12/23 · loss 0.0421 · ETA 0:41"``."""
        current = min(self.epoch + 1, self.epochs) if self.active else self.epoch
        parts = [f"epoch {current}/{self.epochs}"]
        if self.steps and self.active:
            parts.append(f"step {self.step}/{self.steps}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.active:
            parts.append(f"ETA {_clock(self.eta_s)}" if self.eta_s is not None else "ETA …")
        return " · ".join(parts)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def _alive(run_dir: Path, job: jobs.Job | None) -> tuple[bool, int | None]:
    """Is the job's process running, and its exit code when this server started it.

    A process started elsewhere counts while its command line is this run's training or while it
    holds the run folder's lock; without a job record (a run trained from a terminal), while
    anyone holds that lock.
    """
    if job is not None:
        running, rc = jobs.alive(job, registry())
        if running or rc is not None:
            return running, rc
    else:
        polled = registry().poll(str(run_dir))
        if polled is not None:
            return polled
    holder = lock_holder(run_dir)
    return holder is not None and (job is None or holder == job.pid), None


def log_error(run_dir: Path) -> tuple[str, str] | None:
    """What a finished job's log says went wrong: ``("failed", message)`` for the CLI's
    ``error: ...`` (an lsx error, reported cleanly), ``("crashed", last line)`` for a traceback,
    None when it shows neither."""
    lines = tail(run_dir, 80).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(("error: ", "Traceback"))]
    if not starts:
        return None
    i = starts[-1]
    if lines[i].startswith("error: "):
        return "failed", "\n".join(lines[i:]).removeprefix("error: ").strip()
    last = next((ln for ln in reversed(lines) if ln.strip()), "").strip()
    text = "\n".join(lines[i:])
    hint = ""
    if any(sign in text for sign in DISK_FULL_SIGNS):
        hint = (
            " The disk looks full (or the run folder stopped being writable): free some space, "
            "then resume the run; the last good checkpoint is intact."
        )
    return "crashed", f"The training process crashed: {last}.{hint}"


def job_view(run_dir: Path, now: float | None = None) -> JobView:
    """Read the run folder (status, job file, lock, log) and say what its job is doing.

    Parameters
    ----------
    run_dir : Path
    now : float or None
        ``time.time()`` (tests pass a fixed clock).

    Returns
    -------
    JobView
    """
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    record = jobs.read_json(run_dir / JOB_NAME) or {}
    job = jobs.Job.from_record(record, match=_match(run_dir), key=str(run_dir)) if record else None
    status = read_status(run_dir)
    started = float(record.get("started", 0.0))
    # the runner records ``started`` before the child exists, so every status the job writes is
    # at least as new; an older one (e.g. "stopped" before a resume, even a second before) is not
    # this job's
    fresh = bool(status) and float(status.get("updated", 0.0)) >= started
    if not fresh:
        status = {}
    alive, rc = _alive(run_dir, job)
    state_ = _state(run_dir, alive, str(status.get("state", "")), bool(record))
    epochs, epoch = int(status.get("epochs") or 0), int(status.get("epoch") or 0)
    steps = int(status.get("steps_per_epoch") or 0)
    step = int(status.get("step_in_epoch") or 0) if status.get("state") == "running" else 0
    fraction = 1.0 if state_ in DONE_STATES else 0.0
    if epochs and state_ not in DONE_STATES:
        fraction = min(1.0, (epoch + (step / steps if steps else 0.0)) / epochs)
    elapsed = max(0.0, now - started) if started else 0.0
    gained = fraction - float(record.get("start_fraction", 0.0))
    eta = elapsed * (1.0 - fraction) / gained if alive and gained > 1e-6 else None
    resumable = not alive and state_ in ("stopped", "failed", "crashed")
    loss = status.get("loss", status.get("train_loss"))
    return JobView(
        run_dir, state_, epoch, epochs, step, steps,
        float(loss) if isinstance(loss, int | float) else None, fraction, eta, elapsed,
        str(status.get("message", "")), _error(run_dir, state_, status, rc),
        resumable and (run_dir / TRAIN_STATE_NAME).is_file(),
    )  # fmt: skip


def _state(run_dir: Path, alive: bool, written: str, has_job: bool) -> str:
    """The job's state from its liveness and the state the trainer wrote since it started."""
    if alive:
        if str(run_dir) in registry().cancelled or written == "stopped":
            return "stopping"
        return "running" if written else "starting"
    if written in (*DONE_STATES, "stopped", "failed"):
        return written
    if has_job or written:  # ended without a final status: the log says why
        reported = log_error(run_dir)
        return reported[0] if reported else "crashed"
    return "none"


def _error(run_dir: Path, state_: str, status: Mapping[str, Any], rc: int | None) -> str | None:
    if state_ not in ("failed", "crashed"):
        return None
    if status.get("state") == "failed" and status.get("message"):
        return str(status["message"])
    reported = log_error(run_dir)
    if reported:
        return reported[1]
    if rc is not None and rc < 0:  # killed by a signal before the trainer could handle it
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        cancelled = str(run_dir) in registry().cancelled
        return (
            f"The training process was {'cancelled' if cancelled else 'killed'} ({name}) before "
            "it had saved a checkpoint. Start the run again."
        )
    return (
        f"The training process ended (exit code {rc if rc is not None else 'unknown'}) without "
        "saying why; see the log."
    )


def tail(run_dir: Path, n_lines: int = LOG_LINES) -> str:
    """The last ``n_lines`` of the run's log (at most the last 64 KiB)."""
    return jobs.tail(Path(run_dir) / LOG_NAME, n_lines)


def watchable_runs(root: Path) -> list[str]:
    """Run folders under ``root`` with a job in progress, or incomplete (stopped, failed,
    crashed) ones that can be resumed; names, sorted."""
    out = []
    try:
        entries = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name[0] != ".")
    except OSError:
        return []
    for run_dir in entries:
        if not ((run_dir / JOB_NAME).is_file() or (run_dir / STATUS_NAME).is_file()):
            continue
        view = job_view(run_dir)
        if view.active or view.state in ("stopped", "failed", "crashed"):
            out.append(run_dir.name)
    return out
