"""Training jobs of the app: a form generated from the configs, a subprocess per run, a live view.

A job is ``python -m lsx train ... --no-progress`` (the CLI's own code) started with
``subprocess.Popen`` in its own session, its stdout and stderr going to ``<run_dir>/train.log``.
The page never trains in the script thread, so reruns, other pages and other users stay
responsive, and a job survives the browser tab that started it.

One job per run folder: before starting, the app creates ``<run_dir>/.lock`` exclusively
(``O_CREAT | O_EXCL``) and writes the child's PID into it; the trainer then holds the same lock
(lsx.train.run_lock). A second start, from another tab or a CLI, is refused while that PID lives,
and also in the moment between claiming the lock and the child starting.

The live view (:func:`live_panel`) polls the files the trainer writes atomically, every 2 s in an
``st.fragment``: ``status.json`` (state, epoch, step, loss), ``metrics.jsonl`` (one record per
epoch), ``snapshots/`` (latent codes of fixed test points per epoch, lsx.snapshots) and the log.
Cancel sends SIGTERM: the trainer finishes the step, saves, writes status "stopped" (the run stays
out of the checkpoint picker until resumed and completed, lsx.checkpoint.list_runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis.compare import align_sequence
from lsx.app import forms, state
from lsx.app.forms import FieldSpec
from lsx.checkpoint import CONFIG_NAME, METRICS_NAME, STATUS_NAME, TRAIN_STATE_NAME, read_status
from lsx.config import TrainConfig, config_from_dict
from lsx.data import DATASETS, Dataset, load_dataset
from lsx.data.lazy import ImageSource, open_source
from lsx.errors import ConfigError, DatasetError, LsxError, TrainingError
from lsx.files import atomic_write_json, read_jsonl
from lsx.jobs import command_has, pid_alive
from lsx.models import MODELS, make_config
from lsx.snapshots import SNAPSHOT_DIR, read_index, read_snapshots, snapshot_epochs
from lsx.viz.training import loss_curves, metric_curves, snapshot_animation

LOG_NAME = "train.log"
JOB_NAME = "job.json"
LOCK_NAME = ".lock"
REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDER_CHOICE = "folder:"  # the dataset picker's entry for a user's image folder
NPY_CHOICE = "npy:"  # ... and for a user's .npy file of images (memory-mapped, always lazy)
PATH_CHOICES = (FOLDER_CHOICE, NPY_CHOICE)  # choices whose spec is the prefix + a server path
PATH_PROMPTS: Mapping[str, str] = MappingProxyType(
    {
        FOLDER_CHOICE: "Enter the path of your image folder (one subfolder per class).",
        NPY_CHOICE: "Enter the path of your .npy file of images: uint8 (0..255) or float32 in "
        "[0, 1], shape (n, H, W) or (n, C, H, W); labels from NAME.labels.npy beside it.",
    }
)
APP_TRAIN_DEFAULTS: Mapping[str, Any] = MappingProxyType({"snapshots": 1000})
DONE_STATES = ("completed", "early_stopped")
ACTIVE_STATES = ("starting", "running", "stopping")
STARTING_GRACE_S = 30.0  # an empty lock younger than this: another session is starting a job
MAX_FRAMES = 40  # snapshot epochs shown in the animation (evenly spread when more)
LOG_LINES = 200
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
# what a full disk or a file-size limit looks like in a traceback (OSError errno 28 / 27, or a
# short write inside torch.save's zip writer)
DISK_FULL_SIGNS = ("[Errno 28]", "[Errno 27]", "No space left", "File too large", "unexpected pos")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# ------------------------------------------------------------------------------ form fields


def device_choices() -> tuple[str, ...]:
    """``auto`` and ``cpu``, plus ``cuda`` (and ``cuda:N``) only when CUDA is available."""
    import torch

    extra = ()
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        extra = ("cuda", *(f"cuda:{i}" for i in range(1, n)))
    return ("auto", "cpu", *extra)


def data_fields(kind: str, dataset: Dataset | ImageSource | DataSummary) -> dict[str, Any]:
    """Config fields the dataset determines (``input_shape``, and e.g. class counts); anything
    with ``input_shape`` and ``label_names`` will do (a Dataset, an ImageSource, a summary)."""
    try:
        from lsx.models import dataset_fields
    except ImportError:  # a registry without the hook: the input shape only
        return {"input_shape": dataset.input_shape}
    return dataset_fields(kind, dataset)


def model_specs(kind: str, dataset: Dataset | ImageSource | DataSummary) -> tuple[FieldSpec, ...]:
    """Form fields of ``kind``'s config, without those the dataset determines."""
    cls = MODELS[kind].config_cls if kind in MODELS else None
    if cls is None:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODELS)}")
    return forms.field_specs(cls, tuple(sorted(data_fields(kind, dataset))))


def train_specs() -> tuple[FieldSpec, ...]:
    """Form fields of TrainConfig: the device as a picker, the app's defaults applied."""
    out = []
    for spec in forms.field_specs(TrainConfig):
        if spec.name == "device":
            spec = dataclasses.replace(spec, kind="choice", choices=device_choices())
        if spec.name in APP_TRAIN_DEFAULTS:
            value = APP_TRAIN_DEFAULTS[spec.name]
            note = f"  \nThe app's default is {value} (the command line's is {spec.default})."
            spec = dataclasses.replace(spec, default=value, help=spec.help + note)
        out.append(spec)
    return tuple(out)


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class DataSummary:
    """What the form shows and derives from the chosen data, without its pixels."""

    spec: str
    input_shape: tuple[int, int, int]
    label_names: Mapping[str, tuple[str, ...]]
    n_train: int
    n_test: int
    lazy: bool  # the trainer reads it batch by batch (DataLoader workers), not whole
    notes: tuple[str, ...] = ()

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self.label_names.values()))


def open_data(spec: str, image_size: int | None = None) -> Dataset | ImageSource:
    """The data as the form validates it: ``npy:`` and ``folder:`` opened as lazy sources (files
    listed, nothing decoded but a folder's channel sample), built-in datasets loaded (cached).

    Raises
    ------
    ConfigError, DatasetError, DataShapeError
        ``open_source``'s or ``load_dataset``'s message (missing file, pickled or object array,
        unsupported dtype or shape, unreadable folder, ...).
    """
    if not spec.startswith(PATH_CHOICES):
        return load_dataset(spec, image_size=image_size)
    try:
        return open_source(spec, image_size=image_size)
    except OSError as err:  # e.g. a file the server may not read
        raise DatasetError(
            f"{spec.split(':', 1)[1]} cannot be read ({err.strerror or err}); check that it "
            "exists and that the server may read it."
        ) from err


def is_lazy(data: Dataset | ImageSource) -> bool:
    """Whether ``python -m lsx train`` reads ``data`` lazily: every ``npy:`` file, and folders
    of more than ``lsx.cli.LAZY_FOLDER_ABOVE`` images (lsx.cli._open_data)."""
    from lsx.cli import LAZY_FOLDER_ABOVE

    if not isinstance(data, ImageSource):
        return False
    return data.spec.startswith(NPY_CHOICE) or len(data) > LAZY_FOLDER_ABOVE


def summarize(data: Dataset | ImageSource) -> DataSummary:
    """Sizes, shape, classes and notes of ``data`` (a source's split sizes, no pixels read)."""
    if isinstance(data, ImageSource):
        n_train, n_test = len(data.split_indices("train")), len(data.split_indices("test"))
    else:
        n_train, n_test = len(data.x_train), len(data.x_test)
    return DataSummary(
        data.spec, tuple(data.input_shape), dict(data.label_names), n_train, n_test,
        is_lazy(data), tuple(data.notes) if data.spec.startswith(PATH_CHOICES) else (),
    )  # fmt: skip


def _stamp(spec: str) -> tuple:
    """Changes when the file (and its labels file) or the folder's class list changes."""
    from lsx.data import _folder_stamp

    if not spec.startswith(PATH_CHOICES):
        return ()
    path = Path(spec.split(":", 1)[1])
    if spec.startswith(FOLDER_CHOICE):
        return _folder_stamp(path)
    out = []
    for p in (path, path.with_name(path.name.removesuffix(".npy") + ".labels.npy")):
        with contextlib.suppress(OSError):
            out.append((p.name, p.stat().st_mtime_ns, p.stat().st_size))
    return tuple(out)


@st.cache_data(max_entries=16, show_spinner="Reading the dataset …")
def _summary(spec: str, image_size: int | None, stamp: tuple) -> DataSummary:
    return summarize(open_data(spec, image_size))


def data_summary(spec: str, image_size: int | None) -> DataSummary:
    """:func:`summarize` of :func:`open_data`, cached per spec, size and file stamp (a large
    folder is listed once, not on every rerun); errors are not cached."""
    return _summary(spec, image_size, _stamp(spec))


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class TrainRequest:
    """A validated training job: what ``python -m lsx train`` gets.

    ``model_fields`` and ``train_fields`` hold only values that differ from the defaults of the
    config dataclasses (the CLI's defaults are the same).
    """

    root: Path
    name: str
    kind: str = ""
    data: str = ""
    image_size: int | None = None
    model_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resume: bool = False
    class_names: tuple[str, ...] = ()

    @property
    def run_dir(self) -> Path:
        return self.root / self.name

    def argv(self) -> list[str]:
        """The command line, ``sys.executable -m lsx train ... --no-progress``."""
        cmd = [sys.executable, "-m", "lsx", "train", "--out", str(self.root), "--name", self.name]
        cmd.append("--no-progress")
        if self.resume:
            cmd.append("--resume")
        else:
            cmd += ["--model", self.kind, "--data", self.data]
            if self.image_size is not None:
                cmd += ["--image-size", str(self.image_size)]
        for name, value in self.model_fields.items():
            cmd += [f"--{name.replace('_', '-')}", json.dumps(_jsonable(value))]
        for name, value in self.train_fields.items():
            cmd += [f"--{name.replace('_', '-')}", _train_arg(value)]
        return cmd


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _train_arg(value: Any) -> str:
    """How the CLI's TrainConfig options (``type=type(default)``) read a value back."""
    if isinstance(value, bool):
        return "1" if value else ""  # bool("1") is True, bool("") is False
    return str(value)


def default_name(kind: str, data: str) -> str:
    """``<kind>-<data>-<YYYYmmdd-HHMMSS>``, as the CLI names runs; for a folder or a .npy file
    its name (``vae-shirts-...``, ``vae-images-...``), characters a run name refuses as ``-``."""
    if data.startswith(PATH_CHOICES):
        data = data.rstrip("/").rsplit("/", 1)[-1].removesuffix(".npy")
        data = re.sub(r"[^A-Za-z0-9._-]+", "-", data).strip(".-") or "data"
    return f"{kind}-{data.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_name(name: str) -> str:
    """A run-folder name: letters, digits, ``.``, ``_``, ``-``; ConfigError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"The run name must start with a letter or digit and hold only letters, digits, '.', "
            f"'_' and '-' (at most 100 characters); got {name!r}. Leave it empty for an "
            "automatic name."
        )
    return name


def dataset_spec(choice: str, path: str = "") -> str:
    """The data spec of a picker choice: a built-in name, or ``folder:`` / ``npy:`` with the
    path made absolute (ConfigError asking for it when empty)."""
    if choice not in PATH_CHOICES:
        return choice
    if not path.strip():
        raise ConfigError(PATH_PROMPTS[choice])
    return choice + str(Path(path.strip()).expanduser().resolve())


def prepare_request(
    root: Path,
    name: str,
    kind: str,
    data: str,
    image_size: int | None,
    model_values: Mapping[str, Any],
    train_values: Mapping[str, Any],
) -> TrainRequest:
    """Validate a new run exactly as the trainer will, before anything is started or written.

    Raises
    ------
    ConfigError
        A field the config refuses (its own message), an unknown kind, a bad run name, an
        unavailable device, or a run folder that already holds a run.
    DatasetError, DataShapeError
        The dataset cannot be opened (``npy:`` and ``folder:`` are opened lazily, as lsx.data.lazy
        open_source does: listed and checked, not decoded).
    """
    from lsx.train import resolve_device

    name = check_name(name.strip() or default_name(kind, data))
    image_size = image_size if data.startswith(FOLDER_CHOICE) else None  # npy keeps its size
    dataset = open_data(data, image_size)
    model_values = dict(model_values)
    make_config(kind, **{**data_fields(kind, dataset), **model_values})  # the config's message
    train_cfg = config_from_dict(TrainConfig, dict(train_values))
    resolve_device(train_cfg.device)  # ConfigError when CUDA was asked for but is missing
    specs = {s.name: s for s in forms.field_specs(TrainConfig)}
    train_fields = {k: v for k, v in train_values.items() if k in specs and v != specs[k].default}
    model_fields = forms.non_defaults(model_specs(kind, dataset), model_values)
    if (Path(root) / name / CONFIG_NAME).exists():
        raise ConfigError(
            f"{Path(root) / name} already holds a run; lsx never overwrites one. Choose another "
            "run name, or resume that run below if it is incomplete."
        )
    return TrainRequest(
        Path(root).resolve(), name, kind, data, image_size, model_fields, train_fields,
        class_names=tuple(dataset.class_names),
    )  # fmt: skip


def resume_request(root: Path, name: str, epochs: int | None = None) -> TrainRequest:
    """Continue an incomplete run from its ``train_state.pt`` (optionally to ``epochs``)."""
    run_dir = Path(root) / check_name(name)
    if not (run_dir / TRAIN_STATE_NAME).is_file():
        raise TrainingError(
            f"{run_dir} has no {TRAIN_STATE_NAME} to resume from (it never finished a step, or "
            "it was exported without its training state). Start a new run instead."
        )
    train = {"epochs": int(epochs)} if epochs is not None else {}
    if train:
        config_from_dict(TrainConfig, train)  # the config's message for a bad epoch count
    return TrainRequest(Path(root).resolve(), name, train_fields=train, resume=True)


# ------------------------------------------------------------------------------ jobs


class JobRegistry:
    """The Popen handles of this server process's jobs (so finished ones are reaped, never left
    as zombies that look alive), and which ones were asked to stop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.cancelled: set[str] = set()


@st.cache_resource(show_spinner=False)
def registry() -> JobRegistry:
    """The one registry of this server process (shared by every session)."""
    return JobRegistry()


def _lock_pid(run_dir: Path) -> int | None:
    """PID in the lock file; 0 when the file is empty; None when there is none."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else 0


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


def _claim(run_dir: Path, jobs: JobRegistry) -> None:
    """Create the lock exclusively; refuse when another job holds it or is starting."""
    lock = run_dir / LOCK_NAME
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return
        except FileExistsError:
            pid = _lock_pid(run_dir)
            if pid:  # busy while that process lives (our own child: until it is reaped)
                proc = jobs.procs.get(str(run_dir))
                own = proc is not None and proc.pid == pid
                busy = proc.poll() is None if own else pid_alive(pid)
            else:  # empty: another session claimed it a moment ago and is starting its job
                busy = True
                with contextlib.suppress(OSError):
                    busy = time.time() - lock.stat().st_mtime < STARTING_GRACE_S
            if busy:
                break
            lock.unlink(missing_ok=True)  # stale: its process is gone
    raise TrainingError(
        f"{run_dir} is being trained already (process {_lock_pid(run_dir) or 'starting'}), "
        "perhaps from another browser tab. Watch it below, stop it, or choose another run name."
    )


def start_job(request: TrainRequest, *, preexec_fn: Callable[[], None] | None = None) -> Path:
    """Start ``python -m lsx train`` for ``request`` in a subprocess; return its run folder.

    Parameters
    ----------
    request : TrainRequest
        From :func:`prepare_request` or :func:`resume_request`.
    preexec_fn : callable or None
        Run in the child before exec (tests use it to set resource limits).

    Raises
    ------
    TrainingError
        The checkpoints folder cannot be written, or the run folder is busy.
    ConfigError
        A new run's folder already holds a run.
    """
    run_dir = request.run_dir
    _check_writable(request.root)
    jobs = registry()
    with jobs.lock:  # one claim at a time in this server process (stale-lock takeover)
        if not request.resume and (run_dir / CONFIG_NAME).exists():
            raise ConfigError(
                f"{run_dir} already holds a run; lsx never overwrites one. Choose another name."
            )
        run_dir.mkdir(exist_ok=True)
        _claim(run_dir, jobs)
        try:
            proc = _spawn(request, preexec_fn)
        except BaseException:
            (run_dir / LOCK_NAME).unlink(missing_ok=True)
            raise
        jobs.procs[str(run_dir)] = proc
        jobs.cancelled.discard(str(run_dir))
    return run_dir


def _spawn(request: TrainRequest, preexec_fn: Callable[[], None] | None) -> subprocess.Popen:
    run_dir = request.run_dir
    status = read_status(run_dir) if request.resume else {}
    epochs = status.get("epochs") or 1
    start = min(1.0, float(status.get("epoch", 0)) / float(epochs)) if request.resume else 0.0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    argv = request.argv()
    with open(run_dir / LOG_NAME, "ab") as log:
        log.write(f"$ {' '.join(argv[1:])}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec_fn,
            )  # fmt: skip
        except OSError as err:
            raise TrainingError(f"Could not start the training process: {err}") from err
    (run_dir / LOCK_NAME).write_text(str(proc.pid))  # the trainer writes the same PID
    job = {
        "pid": proc.pid,
        "started": time.time(),
        "start_fraction": start,
        "argv": argv[1:],
        "resume": request.resume,
    }
    if request.class_names or not request.resume:
        job["class_names"] = list(request.class_names)
    else:
        job["class_names"] = (_read_json(run_dir / JOB_NAME) or {}).get("class_names", [])
    atomic_write_json(run_dir / JOB_NAME, job)
    return proc


def cancel_job(run_dir: Path) -> bool:
    """Send SIGTERM to the run's training process; True when one was signalled.

    The trainer finishes the current step, saves a checkpoint and writes status "stopped".
    """
    key = str(Path(run_dir))
    jobs = registry()
    with jobs.lock:
        proc = jobs.procs.get(key)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            jobs.cancelled.add(key)
            return True
    pid = _lock_pid(Path(run_dir))
    if pid and pid_alive(pid) and _is_trainer(pid, Path(run_dir).name):
        os.kill(pid, signal.SIGTERM)  # started by another server process or a terminal
        jobs.cancelled.add(key)
        return True
    return False


def _is_trainer(pid: int, name: str) -> bool:
    """The process's command line is an lsx training of this run (never signal a stranger)."""
    return command_has(pid, "lsx", "train", name) is True


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(run_dir: Path, job: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Is the job's process running, and its exit code when this server started it."""
    proc = registry().procs.get(str(run_dir))
    if proc is not None:
        rc = proc.poll()
        return rc is None, rc
    pid = job.get("pid") or _lock_pid(run_dir)
    if not pid or not pid_alive(int(pid)):
        return False, None
    young = time.time() - float(job.get("started", 0)) < STARTING_GRACE_S
    return (run_dir / LOCK_NAME).exists() or young, None


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
    job = _read_json(run_dir / JOB_NAME) or {}
    status = read_status(run_dir)
    started = float(job.get("started", 0.0))
    fresh = bool(status) and float(status.get("updated", 0.0)) >= started - 1.0
    if not fresh:
        status = {}  # written before this job started (e.g. "stopped" before a resume)
    alive, rc = _alive(run_dir, job)
    state_ = _state(run_dir, alive, str(status.get("state", "")), bool(job))
    epochs, epoch = int(status.get("epochs") or 0), int(status.get("epoch") or 0)
    steps = int(status.get("steps_per_epoch") or 0)
    step = int(status.get("step_in_epoch") or 0) if status.get("state") == "running" else 0
    fraction = 1.0 if state_ in DONE_STATES else 0.0
    if epochs and state_ not in DONE_STATES:
        fraction = min(1.0, (epoch + (step / steps if steps else 0.0)) / epochs)
    elapsed = max(0.0, now - started) if started else 0.0
    gained = fraction - float(job.get("start_fraction", 0.0))
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
    path = Path(run_dir) / LOG_NAME
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-n_lines:])


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


# ------------------------------------------------------------------------------ snapshots


@dataclass(frozen=True, eq=False)
class SnapshotView:
    epochs: tuple[int, ...]
    frames: tuple[np.ndarray, ...]  # (n_points, 2) each, aligned
    labels: np.ndarray  # (n_points,)
    class_names: tuple[str, ...]


def _class_names(run_dir: Path, labels: np.ndarray) -> tuple[str, ...]:
    names = (_read_json(run_dir / JOB_NAME) or {}).get("class_names") or []
    if not names:
        data = (_read_json(run_dir / CONFIG_NAME) or {}).get("data", {})
        names = next(iter((data.get("label_names") or {}).values()), [])
    n = int(labels.max()) + 1 if len(labels) else 0
    return tuple(str(names[i]) if i < len(names) else str(i) for i in range(n))


@st.cache_data(max_entries=8, show_spinner=False)
def _snapshot_view(run_dir: str, epochs: tuple[int, ...], stamp: int) -> SnapshotView | None:
    index = read_index(Path(run_dir))
    if index is None or not epochs:
        return None
    labels = np.asarray(index["labels"], dtype=np.int64)
    frames = align_sequence(read_snapshots(Path(run_dir), list(epochs)))
    return SnapshotView(epochs, tuple(frames), labels, _class_names(Path(run_dir), labels))


def snapshot_view(run_dir: Path) -> SnapshotView | None:
    """The run's latent snapshots as aligned 2-D frames (at most ``MAX_FRAMES``, evenly spread,
    first and last kept); None when the run writes none."""
    epochs = snapshot_epochs(run_dir)
    if len(epochs) > MAX_FRAMES:
        keep = np.unique(np.linspace(0, len(epochs) - 1, MAX_FRAMES).round().astype(int))
        epochs = [epochs[i] for i in keep]
    try:
        stamp = (Path(run_dir) / SNAPSHOT_DIR).stat().st_mtime_ns
    except OSError:
        return None
    return _snapshot_view(str(run_dir), tuple(epochs), stamp)


# ------------------------------------------------------------------------------ rendering


def _lazy_above() -> int:
    from lsx.cli import LAZY_FOLDER_ABOVE

    return LAZY_FOLDER_ABOVE


def _dataset_label(choice: str) -> str:
    if choice == FOLDER_CHOICE:
        return "your image folder …"
    if choice == NPY_CHOICE:
        return "a .npy file of images … (read lazily)"
    return f"{choice} · {DATASETS[choice].summary}"


def dataset_picker() -> tuple[str, int | None]:
    """Dataset choice: the built-ins, a user's image folder with an image size, or a user's
    ``.npy`` file of images (native size).

    Returns
    -------
    spec : str
        ``python -m lsx train --data``: a name, ``folder:<absolute path>`` or
        ``npy:<absolute path>``.
    image_size : int or None
        The folder's image size; None otherwise (native size).

    Raises
    ------
    ConfigError
        The folder or .npy choice has no path yet.
    """
    from lsx.data import DEFAULT_FOLDER_IMAGE_SIZE, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    st.selectbox(
        "Dataset", [*DATASETS, *PATH_CHOICES], key=state.TR_DATA, format_func=_dataset_label
    )
    choice = st.session_state[state.TR_DATA]
    if choice == NPY_CHOICE:
        st.text_input(
            ".npy file on the server", key=state.TR_NPY, placeholder="/data/images.npy",
            help="uint8 (0..255) or float32 in [0, 1] images of shape (n, H, W) or (n, C, H, W), "
            "C = 1 or 3, saved with numpy.save (never a pickle). Integer labels, shape (n,), from "
            "NAME.labels.npy beside it; without it every image is class 'all'. Memory-mapped and "
            "read batch by batch, so it may be larger than memory.",
        )  # fmt: skip
        return dataset_spec(NPY_CHOICE, st.session_state.get(state.TR_NPY) or ""), None
    if choice != FOLDER_CHOICE:
        return choice, None
    left, right = st.columns([3, 1])
    left.text_input(
        "Image folder on the server", key=state.TR_FOLDER, placeholder="/data/shirts",
        help="One subfolder per class holding PNG, JPEG or WebP images. More than "
        f"{_lazy_above():,} images are read lazily (decoded batch by batch), not loaded whole.",
    )  # fmt: skip
    size = right.number_input(
        "Image size (px)", min_value=MIN_IMAGE_SIZE, max_value=MAX_IMAGE_SIZE,
        value=DEFAULT_FOLDER_IMAGE_SIZE, step=4, key=state.TR_IMAGE_SIZE,
    )  # fmt: skip
    return dataset_spec(FOLDER_CHOICE, st.session_state.get(state.TR_FOLDER) or ""), int(size)


def new_run_form(kind: str, data: str, image_size: int | None) -> None:
    """The generated form; on submit, validate and start the job (errors shown, nothing run).

    Raises
    ------
    LsxError
        The dataset cannot be opened (the page shows the message).
    """
    root = state.checkpoints_root()
    dataset = data_summary(data, image_size)
    c, h, w = dataset.input_shape
    lazy = ""
    if dataset.lazy:
        n = dataset.n_train + dataset.n_test
        lazy = f", read lazily ({n:,} images; set workers below to read in parallel)"
    notes = f" Notes: {'; '.join(dataset.notes)}." if dataset.notes else ""
    st.caption(
        f"{dataset.n_train:,} train + {dataset.n_test:,} test images of {c}×{h}×{w}, "
        f"{len(dataset.class_names)} classes{lazy}.{notes} The run lands in `{root}/`."
    )
    m_specs, t_specs = model_specs(kind, dataset), train_specs()
    with st.form("tr_form"):
        st.markdown(f"**Model** · `{kind}` · {MODELS[kind].summary}")
        model_raw = forms.draw(m_specs, f"tr_m_{kind}_")
        st.markdown("**Training**")
        train_raw = forms.draw(t_specs, "tr_t_")
        st.text_input("Run name", key=state.TR_NAME, placeholder=default_name(kind, data))
        submitted = st.form_submit_button("Start training", type="primary")
    if not submitted:
        return
    try:
        request = prepare_request(
            root, st.session_state[state.TR_NAME], kind, data, image_size,
            forms.parse_values(m_specs, model_raw), forms.parse_values(t_specs, train_raw),
        )  # fmt: skip
        st.session_state[state.TR_RUN] = str(start_job(request))
    except LsxError as err:
        st.error(str(err))
        return
    st.rerun()  # the progress panel (above the form) now watches the new job


def run_chooser() -> str | None:
    """Which job to watch: this session's, or any run in progress or incomplete."""
    root = state.checkpoints_root()
    names = watchable_runs(root)
    mine = st.session_state[state.TR_RUN]
    if mine is not None and Path(mine).name not in names and Path(mine).parent == root:
        names.insert(0, Path(mine).name)
    if not names:
        st.caption("No run in progress. Start one above; it keeps running if you leave the page.")
        return None
    index = names.index(Path(mine).name) if mine is not None and Path(mine).name in names else 0
    name = st.selectbox("Run", names, index=index, help="Runs in progress or incomplete.")
    st.session_state[state.TR_RUN] = str(root / name)
    return str(root / name)


def live_panel(run_dir: str) -> None:
    """Progress, curves, log, snapshots and controls of one run; polls while its job runs.

    While the job runs, progress, curves and log refresh every 2 s and the latent snapshots
    (the heaviest figure) every 10 s. When the job has just completed, the run becomes the chosen
    checkpoint (sidebar).
    """
    view = job_view(Path(run_dir))
    if view.active:
        _poll(run_dir)
        _poll_snapshots(run_dir)
        return
    if view.done and st.session_state[state.TR_SEEN_DONE] != run_dir:
        st.session_state[state.TR_SEEN_DONE] = run_dir
        st.session_state[state.RUN_DIR] = run_dir  # the picker shows the new run at once
        st.rerun()
    _render(view)
    _snapshots(view.run_dir)


@st.fragment(run_every="2s")
def _poll(run_dir: str) -> None:
    view = job_view(Path(run_dir))
    if not view.active:
        st.rerun(scope="app")  # the final view; the picker lists the finished run
    _render(view)


@st.fragment(run_every="10s")
def _poll_snapshots(run_dir: str) -> None:
    _snapshots(Path(run_dir))


def _render(view: JobView) -> None:
    name = view.run_dir.name
    st.markdown(f"**{name}** · {HEADLINES[view.state]}")
    st.progress(view.fraction, text=view.progress_text() if view.epochs else "starting …")
    if view.active:
        st.button(
            "Cancel", key=f"tr_cancel_{name}", on_click=cancel_job, args=(view.run_dir,),
            disabled=view.state == "stopping", help="SIGTERM: save a checkpoint and stop.",
        )  # fmt: skip
    elif view.done:
        st.success(f"{view.message or 'Done'}. The run is in the checkpoint picker (sidebar).")
    elif view.state == "stopped":
        st.warning(
            f"Stopped at epoch {view.epoch}/{view.epochs}: the last good checkpoint is kept but "
            "marked incomplete, so the picker lists it only once it is resumed and completes."
        )
    if view.error:
        st.error(view.error)
    if view.resumable:
        _resume_controls(view)
    history = read_jsonl(view.run_dir / METRICS_NAME)
    st.plotly_chart(loss_curves(history))
    metrics = metric_curves(history)
    if metrics is not None:
        with st.expander("Other metrics per epoch"):
            st.plotly_chart(metrics)
    with st.expander("Log", expanded=view.state in ("failed", "crashed")):
        st.code(tail(view.run_dir) or "(empty)", language=None)


def _snapshots(run_dir: Path) -> None:
    snaps = snapshot_view(run_dir)
    if snaps is None:
        return
    st.markdown(
        f"**Latent snapshots** · {len(snaps.labels):,} fixed test points per epoch; PCA, each "
        "epoch rotated onto the previous one (Procrustes). Play, or drag the slider."
    )
    fig = snapshot_animation(snaps.frames, snaps.epochs, snaps.labels, snaps.class_names)
    st.plotly_chart(fig)


def _resume_controls(view: JobView) -> None:
    first = max(1, view.epoch + 1)
    epochs = st.number_input(
        "Train up to epoch", min_value=first, value=max(view.epochs, first), step=1,
        key=f"{state.TR_RESUME_EPOCHS}_{view.run_dir.name}",
    )  # fmt: skip
    if st.button("Resume", key=f"tr_resume_{view.run_dir.name}", type="primary"):
        try:
            request = resume_request(view.run_dir.parent, view.run_dir.name, int(epochs))
            st.session_state[state.TR_RUN] = str(start_job(request))
        except LsxError as err:
            st.error(str(err))
            return
        st.rerun()
