"""Training jobs (lsx.app.train_form, train_jobs, train_page): the generated form fields,
requests that the CLI parses back, real subprocess jobs, and the bad inputs of issue 7: config
errors, a dataset folder that disappears (before the job loads it, and mid-run), an unwritable
or full checkpoints folder, two tabs starting the same run, cancel + resume, crashed jobs.

The subprocess jobs of this module start together (one module fixture) so their Python/torch
start-up overlaps; each test then waits for its own job.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lsx.app import train_form, train_jobs, train_page
from lsx.app.forms import field_specs, parse_values
from lsx.checkpoint import CONFIG_NAME, STATUS_NAME, TRAIN_STATE_NAME, list_runs
from lsx.config import TrainConfig, check_fields, option
from lsx.errors import ConfigError, DatasetError, DataShapeError, TrainingError
from lsx.files import FolderLock
from lsx.jobs import command_has
from lsx.models import MODELS
from lsx.snapshots import snapshot_epochs
from tests.waiting import wait_until

TINY = {"latent_dim": 2, "hidden_dim": 8}
TIMEOUT = 240.0  # seconds; a contended 2-core machine starts torch slowly


def png_folder(root: Path, n: int = 12) -> Path:
    """Two classes of 8x8 grey PNGs (bright top half vs bright bottom half)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("top", "bottom")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = rng.uniform(0, 60, size=(8, 8))
            img[:4] += 150 if k == 0 else 0
            img[4:] += 150 if k == 1 else 0
            Image.fromarray(img.astype(np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def wait_for(predicate, timeout: float = TIMEOUT, every: float = 0.05):
    return wait_until(predicate, timeout, every, what="the job's state")


def finished(run_dir: Path) -> train_jobs.JobView:
    return wait_for(lambda: (v := train_jobs.job_view(run_dir)).active is False and v, every=0.2)


def request(root: Path, name: str, data: str = "digits", **train) -> train_form.TrainRequest:
    values = {"epochs": 2, "batch_size": 64, "snapshots": 20, "device": "cpu", **train}
    return train_form.prepare_request(root, name, "vae", data, 8, TINY, values)


# ------------------------------------------------------------------------------ the form fields


@dataclass(frozen=True)
class Example:
    width: int = option(4, "how wide", low=2, high=64)
    rate: float = option(0.5, "a rate", low=0.0, low_open=True)
    mode: str = option("a", "a or b", choices=("a", "b"))
    flags: tuple[int, ...] = ()
    on: bool = False
    w1: float = option(1.0, low=0.0)
    w2: float = field(default=2.0, metadata={"help": "from metadata", "high": 9.0})

    def __post_init__(self) -> None:
        check_fields(self)


def test_fields_come_from_types_comments_checks_helpers_loops_and_metadata():
    specs = {s.name: s for s in field_specs(Example)}
    assert [s.name for s in field_specs(Example)] == [f.name for f in dataclasses.fields(Example)]
    width, rate, mode = specs["width"], specs["rate"], specs["mode"]
    assert (width.kind, width.default, width.low, width.high) == ("int", 4, 2, 64)
    assert width.help.startswith("how wide")
    assert "an int >= 2 and <= 64" in width.help
    assert (rate.kind, rate.low, rate.low_open) == ("float", 0.0, True)
    assert (mode.kind, mode.choices) == ("choice", ("a", "b"))  # found in a self._helper()
    assert specs["flags"].kind == "json"
    assert specs["on"].kind == "bool"
    assert specs["w1"].low == 0.0  # for name in (...): check_float(self, name, ...)
    assert specs["w2"].high == 9.0
    assert specs["w2"].help.startswith("from metadata")
    parsed = parse_values(field_specs(Example), {"flags": "[1, 2]", "width": 5.0})
    assert parsed == {"flags": (1, 2), "width": 5}
    with pytest.raises(ConfigError, match="The 'flags' field must be a JSON value"):
        parse_values(field_specs(Example), {"flags": "[1,"})


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_gets_a_form_of_its_own_config_fields(kind, tiny_dataset):
    cls = MODELS[kind].config_cls
    derived = set(train_form.data_fields(kind, tiny_dataset))
    specs = train_form.model_specs(kind, tiny_dataset)
    expected = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in derived]
    assert [s.name for s in specs] == expected
    assert "input_shape" not in expected
    for spec in specs:
        assert spec.default == getattr(cls(), spec.name)
    ints = [s for s in specs if s.kind == "int"]
    assert all(s.low is not None for s in ints if s.name in ("latent_dim", "hidden_dim"))


def test_train_fields_follow_trainconfig_with_a_device_picker_and_app_defaults():
    specs = {s.name: s for s in train_form.train_specs()}
    assert list(specs) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert specs["device"].kind == "choice"
    assert specs["device"].choices[:2] == ("auto", "cpu")
    import torch

    assert ("cuda" in specs["device"].choices) == torch.cuda.is_available()
    assert specs["snapshots"].default == train_form.APP_TRAIN_DEFAULTS["snapshots"]
    lazy = "DataLoader processes reading lazily read data (npy:, large folders)"
    assert specs["workers"].help.startswith(lazy)  # from TrainConfig's comment


def test_requests_round_trip_through_the_cli_parser(tmp_path):
    from lsx.cli import build_parser

    req = train_form.prepare_request(
        tmp_path, "rt", "vae", "digits", None,
        {"latent_dim": 3, "beta": 2.5, "likelihood": "gaussian", "spatial": False},
        {"epochs": 3, "lr": 0.0025, "seed": 4, "snapshots": 50, "device": "cpu", "grad_clip": 5.0},
    )  # fmt: skip
    assert req.model_fields == {"latent_dim": 3, "beta": 2.5, "likelihood": "gaussian"}
    args = build_parser().parse_args(req.argv()[3:])
    model = {k[7:]: v for k, v in vars(args).items() if k.startswith("model__") and v is not None}
    train = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    assert model == req.model_fields
    assert {k: v for k, v in train.items() if v is not None} == req.train_fields
    assert (args.model, args.data, args.name, args.no_progress) == ("vae", "digits", "rt", True)
    assert not tmp_path.joinpath("rt").exists()  # validating writes nothing
    # bools for the CLI's type=bool options, tuples as JSON for model options
    assert bool(train_form._train_arg(False)) is False
    assert bool(train_form._train_arg(True)) is True
    resume = train_form.TrainRequest(tmp_path, "rt", resume=True, train_fields={"epochs": 5})
    args = build_parser().parse_args(resume.argv()[3:])
    assert args.resume
    assert args.epochs == 5


def test_npy_requests_keep_the_native_size_and_round_trip_through_the_cli_parser(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    from lsx.cli import build_parser

    folder = tmp_path / "my data (1)"
    folder.mkdir()
    x = np.random.default_rng(0).integers(0, 256, size=(40, 3, 6, 5), dtype=np.uint8)
    np.save(folder / "faces.npy", x)
    spec = train_form.dataset_spec(train_form.NPY_CHOICE, f"  {folder / 'x' / '..' / 'faces.npy'} ")
    assert spec == f"npy:{(folder / 'faces.npy').resolve()}"
    req = train_form.prepare_request(tmp_path, "", "vae", spec, 16, TINY, {"epochs": 1})
    assert req.image_size is None  # the image-size input is for folders only
    assert req.name.startswith("vae-faces-")
    assert req.class_names == ("all",)  # no faces.labels.npy
    args = build_parser().parse_args(req.argv()[3:])
    assert (args.data, args.image_size, args.model, args.epochs) == (spec, None, "vae", 1)
    name = train_form.default_name("ae", f"npy:{folder / 'faces.npy'}")
    assert train_form.check_name(name) == name
    assert train_form.default_name("ae", f"folder:{folder}").startswith("ae-my-data-1-")
    with pytest.raises(ConfigError, match="Enter the path of your .npy file of images"):
        train_form.dataset_spec(train_form.NPY_CHOICE, " ")
    summary = train_form.summarize(train_form.open_data(spec))
    assert (summary.input_shape, summary.n_train + summary.n_test) == ((3, 6, 5), 40)
    assert summary.lazy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my data (1)"]  # nothing written


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (None, DatasetError, r"does not exist or is not a file"),
        (np.array([[1], "a"], dtype=object), DatasetError, r"without unpickling"),
        (np.zeros((5, 4, 4), dtype=np.int16), DataShapeError, r"holds int16 images"),
        (np.zeros((5, 2, 4, 4), dtype=np.uint8), DataShapeError, r"shape \(5, 2, 4, 4\)"),
        (np.full((5, 4, 4), 2.0, dtype=np.float32), DataShapeError, r"must lie in \[0, 1\]"),
    ],
)
def test_bad_npy_files_are_refused_with_the_sources_message(tmp_path, array, error, message):
    path = tmp_path / "data" / "x.npy"
    path.parent.mkdir()
    if array is not None:
        np.save(path, array, allow_pickle=True)
    with pytest.raises(error, match=message):
        train_form.prepare_request(tmp_path / "ck", "x", "vae", f"npy:{path}", None, TINY, {})
    assert not (tmp_path / "ck").exists()


def test_folders_above_the_lazy_threshold_are_summarized_as_lazy(tmp_path, monkeypatch):
    import lsx.data

    folder = png_folder(tmp_path / "shapes", n=6)
    source = train_form.open_data(f"folder:{folder}", 8)
    assert len(source) == 12
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 12)
    assert not train_form.is_lazy(source)
    assert not train_form.summarize(source).lazy
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 11)
    assert train_form.is_lazy(source)
    assert train_form.summarize(source).class_names == ("bottom", "top")
    assert not train_form.is_lazy(train_form.open_data("digits"))  # built-ins: in memory


# ------------------------------------------------------------------------------ bad input, no job


@pytest.mark.parametrize(
    ("model", "train", "message"),
    [
        ({}, {"lr": 0.0}, r"The 'lr' field of TrainConfig must be a finite number > 0.0. Got 0.0"),
        ({}, {"epochs": 0}, r"The 'epochs' field of TrainConfig must be an int >= 1"),
        ({"spatial": True}, {}, r"a spatial latent needs the conv architecture"),
        ({"latent_dim": 0}, {}, r"The 'latent_dim' field of VAEConfig must be an int >= 1"),
        ({"betta": 1.0}, {}, r"has no field\(s\) \['betta'\] \(did you mean 'beta'"),
    ],
)
def test_config_errors_are_refused_with_the_configs_own_message(tmp_path, model, train, message):
    with pytest.raises(ConfigError, match=message):
        train_form.prepare_request(tmp_path, "x", "vae", "digits", None, model, train)
    assert list(tmp_path.iterdir()) == []


def test_names_devices_and_existing_runs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="The run name must start with a letter or digit"):
        request(tmp_path, "../escape")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            request(tmp_path, "gpu", device="cuda")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / CONFIG_NAME).write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run; lsx never overwrites one"):
        request(tmp_path, "taken")
    with pytest.raises(TrainingError, match="has no train_state.pt to resume from"):
        train_form.resume_request(tmp_path, "taken")


def test_unwritable_checkpoints_folder_is_refused_before_anything_starts(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    req = dataclasses.replace(request(tmp_path, "r"), root=blocker / "checkpoints")
    with pytest.raises(TrainingError, match="checkpoints folder .* cannot be written"):
        train_jobs.start_job(req)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_trainer_taking_the_lock_a_held_lock_and_a_live_job_refuse_a_second_start(tmp_path):
    """The app writes no lock file: it asks the run folder's FolderLock (held by the trainer)
    and the job record (a job started elsewhere, still before its trainer takes the lock)."""
    req = request(tmp_path, "busy")
    req.run_dir.mkdir()
    with open(req.run_dir / ".lock", "a+") as fh:  # a trainer took the lock, no PID written yet
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(TrainingError, match=r"being trained already \(process starting\)"):
            train_jobs.start_job(req)
    with FolderLock(req.run_dir):  # a live process holds it (this one stands in for a trainer)
        with pytest.raises(TrainingError, match=f"process {os.getpid()}"):
            train_jobs.start_job(req)
    other = subprocess.Popen(  # a job of this run started by another server, not yet locking
        [sys.executable, "-c", "import time; time.sleep(60)", "-m", "lsx", "train", "busy"]
    )
    try:
        wait_for(lambda: command_has(other.pid, "lsx", "train", "busy"))  # it has exec'd
        (req.run_dir / train_jobs.JOB_NAME).write_text(json.dumps({"pid": other.pid}))
        with pytest.raises(TrainingError, match=f"process {other.pid}"):
            train_jobs.start_job(req)
    finally:
        other.kill()
        other.wait()
    # a recorded PID that now belongs to another program (recycled) is not this run's job
    (req.run_dir / train_jobs.JOB_NAME).write_text(json.dumps({"pid": os.getppid()}))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (req.run_dir / ".lock").write_text(dead.stdout.strip())  # left behind: nobody holds it
    train_jobs.check_free(req.run_dir, train_jobs.registry())  # free: no error
    assert (req.run_dir / ".lock").read_text() == dead.stdout.strip()  # the app wrote nothing


def test_job_view_reports_crashes_failures_and_progress_without_a_job(tmp_path):
    run = tmp_path / "ghost"
    run.mkdir()
    job = {"pid": 999_999_999, "started": time.time() - 30, "start_fraction": 0.0}
    (run / train_jobs.JOB_NAME).write_text(json.dumps(job))
    (run / train_jobs.LOG_NAME).write_text("epoch 1/4\nTraceback (most recent call last):\n  x\n"
                                         "MemoryError: out of memory\n")  # fmt: skip
    view = train_jobs.job_view(run)
    assert view.state == "crashed"
    assert not view.active
    assert view.error == "The training process crashed: MemoryError: out of memory."
    (run / train_jobs.LOG_NAME).write_text("error: The folder /gone does not exist. Pass ...\n")
    assert train_jobs.job_view(run).state == "failed"
    assert train_jobs.job_view(run).error.startswith("The folder /gone does not exist")
    # a live job: progress and ETA from status.json (this process stands in for the trainer)
    job = {"pid": os.getpid(), "started": 1000.0, "start_fraction": 0.0}
    (run / train_jobs.JOB_NAME).write_text(json.dumps(job))
    lock = FolderLock(run).acquire()  # as the trainer holds it while it trains
    status = {"state": "running", "epoch": 1, "epochs": 4, "step_in_epoch": 5,
              "steps_per_epoch": 10, "loss": 0.5, "updated": 1020.0}  # fmt: skip
    (run / STATUS_NAME).write_text(json.dumps(status))
    view = train_jobs.job_view(run, now=1030.0)
    assert view.state == "running"
    assert view.fraction == pytest.approx(1.5 / 4)
    assert view.eta_s == pytest.approx(30 * (1 - 0.375) / 0.375)
    assert view.progress_text() == "epoch 2/4 · step 5/10 · loss 0.5 · ETA 0:50"
    assert "ghost" in train_jobs.watchable_runs(tmp_path)
    lock.release()


def test_a_status_written_just_before_a_resume_is_not_the_new_jobs(tmp_path):
    """The race seen once in test_cancel_keeps_...: the old job's "stopped" status, written less
    than a second before the resumed job started, made the new job look "stopping"."""
    run = tmp_path / "again"
    run.mkdir()
    now = time.time()
    status = {"state": "stopped", "epoch": 1, "epochs": 3, "updated": now - 0.5}
    (run / STATUS_NAME).write_text(json.dumps(status))
    child = subprocess.Popen(  # the resumed trainer, still importing torch
        [sys.executable, "-c", "import time; time.sleep(60)", "-m", "lsx", "train", "again"]
    )
    try:
        wait_for(lambda: command_has(child.pid, "lsx", "train", "again"))  # it has exec'd
        job = {"pid": child.pid, "started": now, "start_fraction": 1 / 3}
        (run / train_jobs.JOB_NAME).write_text(json.dumps(job))
        assert train_jobs.job_view(run).state == "starting"
        status.update(state="running", updated=now + 0.1)  # the new trainer's first status
        (run / STATUS_NAME).write_text(json.dumps(status))
        assert train_jobs.job_view(run).state == "running"
    finally:
        child.kill()
        child.wait()


# ------------------------------------------------------------------------------ real jobs


def _small_files() -> None:  # in the child: files may not grow past 8 KiB ("disk full")
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


@dataclass
class Jobs:
    root: Path
    folder: Path  # dataset of the mid-run job
    gone: Path  # dataset deleted before its job loads it
    race: list = field(default_factory=list)  # outcomes of the concurrent starts
    active_when_deleted: bool = False  # the mid-run job, when its folder was deleted
    stopped_at: int = -1  # epoch at which the cancelled job stopped


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("jobs")
    root = base / "checkpoints"
    folder, gone = png_folder(base / "shapes"), png_folder(base / "vanishing")
    out = Jobs(root, folder, gone)
    mid = request(root, "mid-run", f"folder:{folder}", epochs=30, batch_size=4)
    with ThreadPoolExecutor(6) as pool:  # six "tabs" start the same run at once
        futures = [pool.submit(train_jobs.start_job, mid) for _ in range(6)]
    out.race = [f.exception() or f.result() for f in futures]
    vanish = request(root, "vanish", f"folder:{gone}")
    shutil.rmtree(gone)  # between the form's check and the job's own load
    train_jobs.start_job(vanish)
    train_jobs.start_job(request(root, "cancel-me", epochs=2000))
    train_jobs.start_job(request(root, "disk-full", epochs=3), preexec_fn=_small_files)
    wait_for(lambda: (mid.run_dir / STATUS_NAME).exists())  # the job has loaded the data
    shutil.rmtree(folder)
    out.active_when_deleted = train_jobs.job_view(mid.run_dir).active
    yield out
    for name, proc in list(train_jobs.registry().procs.items()):  # never leave a job behind
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        train_jobs.registry().procs.pop(name, None)


def test_cancel_keeps_an_incomplete_checkpoint_and_resume_starts(jobs):
    run = jobs.root / "cancel-me"
    wait_for(lambda: (v := train_jobs.job_view(run)).state == "running" and v.epoch >= 1)
    assert train_jobs.cancel_job(run)
    assert train_jobs.job_view(run).state == "stopping"
    view = finished(run)
    assert view.state == "stopped", train_jobs.tail(run)
    assert view.resumable
    reason = dict(list_runs(jobs.root)[1])["cancel-me"]
    assert reason.startswith(f"incomplete: stopped at epoch {view.epoch}/2000")
    assert (run / TRAIN_STATE_NAME).is_file()
    assert not train_jobs.cancel_job(run)  # nothing left to stop
    jobs.stopped_at = view.epoch
    train_jobs.start_job(train_form.resume_request(jobs.root, "cancel-me", epochs=view.epoch + 1))
    assert train_jobs.job_view(run).state == "starting"  # the old "stopped" status is stale
    # test_resumed_run_completes (last in this file) waits for it while the others run


def test_two_tabs_starting_the_same_run_start_exactly_one_job(jobs):
    started = [r for r in jobs.race if isinstance(r, Path)]
    refused = [r for r in jobs.race if isinstance(r, TrainingError)]
    assert len(started) == 1, jobs.race
    assert len(refused) == 5, jobs.race
    assert all("is being trained already" in str(e) for e in refused)


def test_a_dataset_folder_that_disappears_mid_run_does_not_stop_the_job(jobs):
    run = jobs.root / "mid-run"
    assert jobs.active_when_deleted  # the fixture deleted the folder while the job trained
    assert not jobs.folder.exists()
    view = finished(run)
    assert view.state == "completed", train_jobs.tail(run)
    assert view.fraction == 1.0
    assert "mid-run" in [r.name for r in list_runs(jobs.root)[0]]
    assert not (run / ".lock").exists()
    with pytest.raises(ConfigError, match="already holds a run"):  # a tab that comes late
        train_jobs.start_job(train_form.TrainRequest(jobs.root, "mid-run", "vae", "digits"))
    assert snapshot_epochs(run) == list(range(31))
    snaps = train_page.snapshot_view(run)
    assert snaps.epochs == tuple(range(31))
    assert snaps.frames[0].shape == (len(snaps.labels), 2)
    assert snaps.class_names == ("bottom", "top")
    from lsx.data import load_dataset

    with pytest.raises(DatasetError, match="does not exist"):  # what exploring it will say
        load_dataset(f"folder:{jobs.folder}", image_size=8)


def test_dataset_folder_that_disappears_before_the_job_loads_it_fails_clearly(jobs):
    view = finished(jobs.root / "vanish")
    assert view.state == "failed"
    assert f"The folder {jobs.gone} does not exist" in view.error
    assert not view.resumable
    skipped = dict(list_runs(jobs.root)[1])
    assert "has no config.json" in skipped["vanish"]  # nothing half-written is listed


def test_a_full_disk_mid_run_shows_the_error_and_lists_nothing_half_written(jobs):
    run = jobs.root / "disk-full"
    view = finished(run)
    assert view.state == "failed", train_jobs.tail(run)  # the trainer says why (issue #18)
    assert view.error.startswith("A file reached the file-size limit of this process")
    assert "Traceback" not in train_jobs.tail(run)
    assert "disk-full" not in [r.name for r in list_runs(jobs.root)[0]]
    assert not list(run.glob(".tmp-*"))  # the atomic writer cleaned up
    assert not (run / CONFIG_NAME).exists()


def test_registry_is_shared_and_thread_safe():
    assert train_jobs.registry() is train_jobs.registry()
    assert isinstance(train_jobs.registry().lock, type(threading.Lock()))


def test_resumed_run_completes_and_is_listed(jobs):
    run = jobs.root / "cancel-me"
    resumed = finished(run)
    assert resumed.state == "completed", train_jobs.tail(run)
    assert resumed.epoch == jobs.stopped_at + 1
    assert "cancel-me" in [r.name for r in list_runs(jobs.root)[0]]
    log = train_jobs.tail(run)
    assert log.count("$ -m lsx train") == 2
    assert "--resume" in log


def test_snapshot_view_spreads_long_runs_over_at_most_max_frames(tmp_path):
    from lsx.snapshots import SNAPSHOT_DIR, snapshot_path

    rng = np.random.default_rng(0)
    (tmp_path / SNAPSHOT_DIR).mkdir()
    index = {"split": "test", "ids": list(range(12)), "labels": [0, 1, 2] * 4}
    (tmp_path / SNAPSHOT_DIR / "index.json").write_text(json.dumps(index))
    for epoch in range(150):
        np.save(snapshot_path(tmp_path, epoch), rng.normal(size=(12, 4)).astype(np.float32))
    snaps = train_page.snapshot_view(tmp_path)
    assert len(snaps.frames) == train_page.MAX_FRAMES
    assert (snaps.epochs[0], snaps.epochs[-1]) == (0, 149)  # first and last kept
    assert snaps.class_names == ("0", "1", "2")  # no names recorded: the codes
    assert all(f.shape == (12, 2) for f in snaps.frames)
