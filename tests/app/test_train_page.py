"""AppTest of the Train page: the generated form of every kind (empty state), config errors and a
missing folder (error paths), a real job started from the form with a second session refused, a
completed job at 100 % that becomes the chosen checkpoint (happy path), the views of a crashed
and a stopped run, and lazy data: a .npy file of images trained to the end (read lazily), bad .npy
files refused with open_source's message, a large folder shown as read lazily. Other real jobs
trained to the end: tests/app/test_training_jobs.py and the browser test."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lsx.app import state, train_form, train_jobs
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import CONFIG_NAME, METRICS_NAME, STATUS_NAME, TRAIN_STATE_NAME, save_checkpoint
from lsx.data import load_dataset
from lsx.files import append_jsonl
from lsx.models import MODELS, build_model, make_config
from lsx.snapshots import write_snapshot
from lsx.train import data_info
from tests.waiting import wait_until

PAGE = str(Path(__file__).parents[2] / "pages" / "1_train.py")
WIDGETS = ("number_input", "selectbox", "checkbox", "text_input")


def page(monkeypatch: pytest.MonkeyPatch, root: Path) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    return AppTest.from_file(PAGE, default_timeout=120).run(timeout=120)


def widget(at: AppTest, key: str):
    for kind in WIDGETS:
        found = [w for w in at.get(kind) if w.key == key]
        if found:
            return found[0]
    return None


def submit(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        widget(at, key).set_value(value)
    next(b for b in at.button if b.label == "Start training").click()
    return at.run(timeout=120)


def test_empty_state_draws_the_form_of_every_kind_from_its_config(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path)
    assert not at.exception
    assert any("No run in progress" in c.value for c in at.caption)
    # the form it points at is below the Progress section, and is named
    assert any("Start one under **New run** below" in c.value for c in at.caption)
    assert [h.value for h in at.subheader][:2] == ["Progress", "New run"]
    ds = load_dataset("digits")
    for kind in MODELS:
        at.selectbox(key=state.TR_KIND).set_value(kind).run(timeout=120)
        assert not at.exception
        for spec in train_form.model_specs(kind, ds):
            w = widget(at, f"tr_m_{kind}_{spec.name}")
            assert w is not None, (kind, spec.name)
            assert w.help == spec.help
        assert widget(at, f"tr_m_{kind}_input_shape") is None  # from the dataset
    for spec in train_form.train_specs():
        assert widget(at, f"tr_t_{spec.name}") is not None
    assert widget(at, "tr_t_device").options[:2] == ["auto", "cpu"]
    assert list(tmp_path.iterdir()) == []


def test_config_errors_and_missing_folders_are_shown_and_nothing_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    at = page(monkeypatch, tmp_path)
    at = submit(at, tr_t_lr=0.0)
    assert not at.exception
    assert (
        "The 'lr' field of TrainConfig must be a finite number > 0.0. Got 0.0" in at.error[0].value
    )
    at.selectbox(key=state.TR_KIND).set_value("vae").run(timeout=120)
    at = submit(at, tr_m_vae_spatial=True)
    assert "a spatial latent needs the conv architecture" in at.error[0].value
    at.selectbox(key=state.TR_DATA).set_value(train_form.FOLDER_CHOICE).run(timeout=120)
    assert any("Enter the path of your image folder" in i.value for i in at.info)
    at.text_input(key=state.TR_FOLDER).set_value(str(tmp_path / "nope")).run(timeout=120)
    assert not at.exception
    assert f"The folder {tmp_path / 'nope'} does not exist" in at.error[0].value
    assert list(tmp_path.iterdir()) == []


def test_the_form_starts_a_job_and_a_second_tab_is_refused(monkeypatch, tmp_path):
    first = page(monkeypatch, tmp_path)
    first.selectbox(key=state.TR_KIND).set_value("ae").run(timeout=120)
    values = {"tr_t_epochs": 2, "tr_t_snapshots": 30, "tr_m_ae_latent_dim": 2, "tr_name": "web"}
    first = submit(first, **values)
    run_dir = tmp_path / "web"
    try:
        assert not first.error, first.error[0].value
        assert first.session_state[state.TR_RUN] == str(run_dir)
        argv = json.loads((run_dir / train_jobs.JOB_NAME).read_text())["argv"]
        assert argv[:3] == ["-m", "lsx", "train"]
        for flag, value in (("--epochs", "2"), ("--latent-dim", "2"), ("--snapshots", "30")):
            assert argv[argv.index(flag) + 1] == value
        assert argv[argv.index("--model") + 1] == "ae"
        assert "web" in first.markdown[0].value  # the progress panel watches the new job
        second = page(monkeypatch, tmp_path)  # another tab, same run name
        second = submit(second, **values)
        assert not second.exception
        assert "is being trained already" in second.error[0].value
    finally:  # this test checks the start; tests/app/test_training_jobs.py trains to the end
        train_jobs.cancel_job(run_dir)
        train_jobs.registry().procs[str(run_dir)].wait(timeout=60)
    view = train_jobs.job_view(run_dir)  # cancelled while starting (or, rarely, after its setup)
    assert view.state in ("crashed", "stopped")
    if view.state == "crashed":
        assert "was cancelled (SIGTERM) before it had saved a checkpoint" in view.error


def completed_run(root: Path) -> Path:
    """A run as a finished job leaves it: checkpoint, metrics, snapshots, status, job file."""
    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("ae", input_shape=ds.input_shape, latent_dim=2, hidden_dim=8)
    model, run = build_model(config), root / "done"
    save_checkpoint(model, config, run, train={"epochs": 2}, data=data_info(ds))
    for epoch in (0, 1, 2):
        write_snapshot(run, model, torch.from_numpy(ds.x_test.copy()), ds.y_test, epoch, 30)
        if epoch:
            append_jsonl(run / METRICS_NAME, {"epoch": epoch, "train_loss": 0.1, "test_loss": 0.2,
                                              "train_recon": 0.1, "test_recon": 0.2})  # fmt: skip
    job = {"pid": _dead_pid(), "started": time.time() - 30, "start_fraction": 0.0}
    (run / train_jobs.JOB_NAME).write_text(json.dumps(job))
    status = {"state": "completed", "epoch": 2, "epochs": 2, "message": "trained 2 epochs",
              "updated": time.time()}  # fmt: skip
    (run / STATUS_NAME).write_text(json.dumps(status))
    return run


def test_a_completed_job_shows_a_green_done_box_and_becomes_the_chosen_checkpoint(
    monkeypatch, tmp_path
):
    run = completed_run(tmp_path)
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(tmp_path))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state[state.TR_RUN] = str(run)
    at.run(timeout=120)
    assert not at.exception
    assert not at.get("progress")  # a full bar is drawn in the theme's (red) primary colour
    done = [s.value for s in at.success if "The run is in the checkpoint picker" in s.value]
    assert len(done) == 1
    assert "epoch 2/2" in done[0]
    assert at.session_state[state.RUN_DIR] == str(run)  # chosen in the sidebar at once
    assert at.sidebar.selectbox(key=state.RUN_PICKER).value == str(run)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [a["text"] for a in charts[0]["layout"]["annotations"]] == ["loss", "recon"]
    layout = charts[0]["layout"]  # legend, toolbar and panel titles do not overlap:
    assert layout["legend"]["yref"] == "container"  # the legend on its own line at the top
    assert layout["legend"]["yanchor"] == "top"
    assert layout["legend"]["y"] == 1
    assert layout["margin"]["t"] >= 70  # room for the legend and toolbar above the titles
    assert all(a["y"] <= 1.0 + 1e-9 for a in layout["annotations"])  # titles stay below
    snapshot = charts[-1]
    assert [f["name"] for f in snapshot["frames"]] == ["epoch 0", "epoch 1", "epoch 2"]
    assert snapshot["layout"]["sliders"][0]["active"] == 2


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout)


def test_a_crashed_run_shows_its_error_and_a_stopped_one_offers_resume(monkeypatch, tmp_path):
    crashed, stopped = tmp_path / "crashed", tmp_path / "stopped"
    for run in (crashed, stopped):
        run.mkdir()
        job = {"pid": _dead_pid(), "started": time.time() - 60, "start_fraction": 0.0}
        (run / train_jobs.JOB_NAME).write_text(json.dumps(job))
    (crashed / train_jobs.LOG_NAME).write_text(
        "Traceback (most recent call last):\nKeyError: 'x'\n"
    )
    status = {"state": "stopped", "epoch": 3, "epochs": 9, "updated": time.time()}
    (stopped / STATUS_NAME).write_text(json.dumps(status))
    (stopped / TRAIN_STATE_NAME).write_bytes(b"lsx-written state")
    at = page(monkeypatch, tmp_path)
    assert not at.exception
    run_box = next(s for s in at.selectbox if s.label == "Run")
    assert run_box.options == ["crashed", "stopped"]
    assert any(e.value == "The training process crashed: KeyError: 'x'." for e in at.error)
    assert any("KeyError: 'x'" in c.value for c in at.code)  # the log panel
    # no epoch finished: no empty placeholder chart, a line that says when curves appear
    assert not at.get("plotly_chart")
    assert any("No epoch has finished yet" in c.value for c in at.caption)
    run_box.set_value("stopped").run(timeout=120)
    assert not at.exception
    assert any("Stopped at epoch 3/9" in w.value for w in at.warning)
    assert any(b.label == "Resume" for b in at.button)
    assert not any(b.label == "Cancel" for b in at.button)


# ------------------------------------------------------------------------------ lazy data


def npy_images(folder: Path, n: int = 300, labels: bool = True) -> Path:
    """``n`` 8x8 uint8 images (bright top half vs bright bottom half) and, optionally, a labels
    file with the 3 label values 0, 5 and 7 (not 0..k-1: the source maps them to classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = np.array([0, 5, 7])[np.arange(n) % 3]
    x = rng.integers(0, 60, size=(n, 8, 8), dtype=np.uint8)
    x[y == 0, :4] += 150
    x[y == 5, 4:] += 150
    np.save(folder / "images.npy", x)
    if labels:
        np.save(folder / "images.labels.npy", y)
    return folder / "images.npy"


def choose_npy(at: AppTest, path: str) -> AppTest:
    at.selectbox(key=state.TR_DATA).set_value(train_form.NPY_CHOICE).run(timeout=120)
    return at.text_input(key=state.TR_NPY).set_value(path).run(timeout=120)


def test_a_npy_file_of_images_trains_lazily_from_the_page(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    path = npy_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # a relative path is made absolute for the job
    root = tmp_path / "checkpoints"
    at = page(monkeypatch, root)
    at.selectbox(key=state.TR_KIND).set_value("ae").run(timeout=120)
    at = choose_npy(at, "data/images.npy")
    assert not at.exception
    assert not at.error
    assert widget(at, state.TR_IMAGE_SIZE) is None  # npy images keep their size
    caption = next(c.value for c in at.caption if "test images of" in c.value)
    assert "270 train + 30 test images of 1×8×8, 3 classes, read lazily (300 images" in caption
    assert "labels from images.labels.npy" in caption
    workers = widget(at, "tr_t_workers")
    assert "DataLoader processes reading lazily read data (npy:, large folders)" in workers.help
    values = {"tr_t_epochs": 1, "tr_t_snapshots": 30, "tr_t_batch_size": 64,
              "tr_m_ae_latent_dim": 2, "tr_m_ae_hidden_dim": 8, "tr_name": "npy-run"}  # fmt: skip
    at = submit(at, **values)
    assert not at.exception
    assert not at.error, at.error[0].value
    run = root / "npy-run"
    argv = json.loads((run / train_jobs.JOB_NAME).read_text())["argv"]
    assert argv[argv.index("--data") + 1] == f"npy:{path}"
    assert "--image-size" not in argv
    view = wait_until(
        lambda: (v := train_jobs.job_view(run)).active is False and v,
        240,
        every=0.2,
        what="the training job to end",
    )
    assert view.state == "completed", train_jobs.tail(run)
    data = json.loads((run / CONFIG_NAME).read_text())["data"]
    assert data["lazy"] is True
    assert data["spec"] == f"npy:{path}"
    assert (data["n_train"], data["n_test"]) == (270, 30)
    assert data["label_names"] == {"class": ["0", "5", "7"]}
    assert "read lazily" in train_jobs.tail(run)  # the CLI's own account of how it read the data


def test_bad_npy_files_show_the_sources_message_and_nothing_starts(monkeypatch, tmp_path):
    root, data = tmp_path / "checkpoints", tmp_path / "data"
    data.mkdir()
    np.save(data / "objects.npy", np.array([{"x": 1}, None], dtype=object))  # needs pickle
    np.save(data / "float64.npy", np.zeros((4, 8, 8)))
    np.save(data / "last.npy", np.zeros((4, 8, 8, 3), dtype=np.uint8))
    at = page(monkeypatch, root)
    at.selectbox(key=state.TR_DATA).set_value(train_form.NPY_CHOICE).run(timeout=120)
    assert any("Enter the path of your .npy file of images" in i.value for i in at.info)
    cases = {
        "missing.npy": f"{data / 'missing.npy'} does not exist or is not a file",
        "objects.npy": "cannot be read without unpickling",
        "float64.npy": "holds float64 images; npy: reads uint8 (0..255) or float32",
        "last.npy": "It looks channels-last (n, H, W, C)",
    }
    for name, message in cases.items():
        at = choose_npy(at, str(data / name))
        assert not at.exception, name
        assert message in at.error[0].value, (name, at.error[0].value)
        assert not any(b.label == "Start training" for b in at.button)  # no form, no job
    assert not root.exists() or list(root.iterdir()) == []


def test_sae_on_a_npy_file_takes_its_class_count_from_the_labels_file(monkeypatch, tmp_path):
    path = npy_images(tmp_path / "data")
    at = page(monkeypatch, tmp_path / "checkpoints")
    at.selectbox(key=state.TR_KIND).set_value("sae").run(timeout=120)
    at = choose_npy(at, str(path))
    assert not at.exception
    assert widget(at, "tr_m_sae_n_classes") is None  # derived from the data, not asked
    assert widget(at, "tr_m_sae_latent_dim") is not None
    n_classes = len(np.unique(np.load(path.with_name("images.labels.npy"))))  # oracle: 3
    assert any(f"{n_classes} classes, read lazily" in c.value for c in at.caption)
    request = train_form.prepare_request(
        tmp_path / "checkpoints", "sae-npy", "sae", f"npy:{path}", None, {}, {"epochs": 1}
    )
    assert request.class_names == ("0", "5", "7")
    from lsx.data.lazy import open_source

    assert train_form.data_fields("sae", open_source(f"npy:{path}"))["n_classes"] == (n_classes,)


def test_a_folder_above_the_lazy_threshold_is_shown_as_read_lazily(monkeypatch, tmp_path):
    monkeypatch.setenv("LSX_DATA_ROOTS", str(tmp_path))  # the app reads data roots only
    from PIL import Image

    import lsx.data

    for k, name in enumerate(("a", "b")):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.full((8, 8), 40 + 150 * k, dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(tmp_path / "shapes" / name / f"{i}.png")
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 11)  # 12 images: above it
    at = page(monkeypatch, tmp_path / "checkpoints")
    at.selectbox(key=state.TR_DATA).set_value(train_form.FOLDER_CHOICE).run(timeout=120)
    at.text_input(key=state.TR_FOLDER).set_value(str(tmp_path / "shapes")).run(timeout=120)
    assert not at.exception
    assert widget(at, state.TR_IMAGE_SIZE) is not None  # folders keep their size input
    assert any("2 classes, read lazily (12 images" in c.value for c in at.caption)
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 12)  # 12 images: loaded whole
    at.number_input(key=state.TR_IMAGE_SIZE).set_value(12).run(timeout=120)  # a new cache key
    caption = next(c.value for c in at.caption if "test images of" in c.value)
    assert "1×12×12, 2 classes." in caption
    assert "read lazily" not in caption


def test_paths_outside_the_data_roots_are_refused_without_saying_whether_they_exist(
    monkeypatch, tmp_path
):
    roots = tmp_path / "data"
    (roots / "imgs").mkdir(parents=True)
    secret = tmp_path / "private" / "imgs"  # exists, readable by the server, outside the roots
    secret.mkdir(parents=True)
    (roots / "escape").symlink_to(secret)  # a link inside a root that resolves outside
    monkeypatch.setenv("LSX_DATA_ROOTS", str(roots))
    at = page(monkeypatch, tmp_path / "runs")
    at.selectbox(key=state.TR_DATA).set_value(train_form.FOLDER_CHOICE).run(timeout=120)
    refusals = []
    for typed in (str(secret), str(tmp_path / "missing"), f"{roots}/../private/imgs", "escape"):
        at.text_input(key=state.TR_FOLDER).set_value(typed).run(timeout=120)
        assert not at.exception
        refusals.append(at.error[0].value)
    assert "reads datasets only from its data folders" in refusals[0]
    assert len(set(refusals)) == 1  # the same words whether the path exists or not
    assert "does not exist" not in refusals[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # inside a root the usual checks speak again (a relative path is taken inside the first root)
    at.text_input(key=state.TR_FOLDER).set_value("nope").run(timeout=120)
    assert f"The folder {roots / 'nope'} does not exist" in at.error[0].value
