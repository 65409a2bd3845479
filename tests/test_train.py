"""Training robustness: determinism, resume, NaN guard, signals, early stop."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lsx.checkpoint import METRICS_NAME, STATUS_NAME, load_checkpoint
from lsx.config import TrainConfig
from lsx.errors import ConfigError, TrainingError
from lsx.files import read_jsonl
from lsx.models import MODELS, build_model, make_config
from lsx.train import Trainer, resolve_device
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def model_for(ds, kind="vae"):
    torch.manual_seed(0)
    return build_model(make_config(kind, input_shape=ds.input_shape, latent_dim=2, hidden_dim=16))


def cfg(**kw) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "device": "cpu", "seed": 0}
    return TrainConfig(**{**base, **kw})


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_training_writes_a_loadable_run_and_metrics(tiny_dataset, tmp_path):
    events = []
    result = Trainer(
        model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path, callbacks=[events.append]
    ).fit()
    assert result.state == "completed"
    assert result.epochs_done == 3
    metrics = read_jsonl(tmp_path / METRICS_NAME)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert {"train_loss", "train_recon", "train_kl", "test_loss", "samples_per_s"} <= set(
        metrics[0]
    )
    assert metrics[-1]["test_loss"] < metrics[0]["test_loss"]
    status = json.loads((tmp_path / STATUS_NAME).read_text())
    assert status["state"] == "completed"
    assert sum(e["event"] == "epoch" for e in events) == 3
    model, config = load_checkpoint(tmp_path)
    assert config.kind == "vae"
    assert not (tmp_path / ".lock").exists()


def test_same_seed_same_curve_other_seed_other_curve(tiny_dataset):
    def curve(seed):
        r = Trainer(model_for(tiny_dataset), tiny_dataset, cfg(seed=seed)).fit()
        return [h["train_loss"] for h in r.history]

    assert curve(0) == curve(0)
    assert curve(0) != curve(1)


def test_resume_mid_epoch_equals_training_straight_through(tiny_dataset, tmp_path):
    straight = Trainer(model_for(tiny_dataset), tiny_dataset, cfg())
    torch.manual_seed(5)
    straight.fit()

    def stop_at_step_5(event):
        if event["event"] == "step" and event["global_step"] == 5:
            first.stop.requested = True  # what SIGTERM does

    first = Trainer(
        model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path, callbacks=[stop_at_step_5]
    )
    torch.manual_seed(5)
    assert first.fit().state == "stopped"
    assert json.loads((tmp_path / STATUS_NAME).read_text())["state"] == "stopped"
    torch.manual_seed(123)  # the resumed run must restore the RNG itself
    second = Trainer(model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path)
    second.resume()
    assert second.global_step == 5
    assert second.fit().state == "completed"
    for key, value in weights(straight.model).items():
        assert torch.equal(weights(second.model)[key], value), key
    loaded, _ = load_checkpoint(tmp_path)
    assert torch.equal(
        loaded.state_dict()["decoder.net.0.weight"],
        straight.model.state_dict()["decoder.net.0.weight"],
    )


class NaNAt:
    """Wraps a model so that its loss is NaN at the given global training steps."""

    def __init__(self, trainer: Trainer, bad_steps: set[int]) -> None:
        self.trainer, self.bad = trainer, bad_steps
        self.original = trainer.model.loss

    def __call__(self, x, y=None):
        losses = self.original(x, y)
        if self.trainer.model.training and self.trainer.global_step in self.bad:
            losses.total = losses.total * math.nan
        return losses


def test_nan_steps_are_skipped_then_rolled_back_then_abort(tiny_dataset, tmp_path):
    trainer = Trainer(model_for(tiny_dataset, "ae"), tiny_dataset, cfg(epochs=4), tmp_path)
    events = []
    trainer.callbacks.append(events.append)
    # one isolated bad step in epoch 1, three in a row in epoch 2 (rollback), then NaN forever
    trainer.model.loss = NaNAt(trainer, {2, 7, 8, 9} | set(range(14, 10_000)))
    with pytest.raises(
        TrainingError, match=r"NaN/Inf for 3 steps in a row at step \d+ \(lr=0.005\)"
    ):
        trainer.fit()
    assert sum(e["event"] == "bad_step" for e in events) >= 7
    assert [e["lr"] for e in events if e["event"] == "rollback"] == [0.005]
    status = json.loads((tmp_path / STATUS_NAME).read_text())
    assert status["state"] == "failed"
    assert "Last finite loss" in status["message"]
    model, _ = load_checkpoint(tmp_path)  # last good checkpoint: finite and loadable
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert [m["epoch"] for m in read_jsonl(tmp_path / METRICS_NAME)] == [1, 2]
    assert json.loads((tmp_path / "config.json").read_text())["train"]["lr"] == 0.01


def test_huge_lr_with_clipping_keeps_weights_finite(tiny_dataset):
    trainer = Trainer(model_for(tiny_dataset, "ae"), tiny_dataset, cfg(lr=1e6, epochs=1))
    trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_early_stop(tiny_dataset, tmp_path):
    trainer = Trainer(
        model_for(tiny_dataset), tiny_dataset, cfg(epochs=50, patience=2, min_delta=1e9), tmp_path
    )
    result = trainer.fit()
    assert result.state == "early_stopped"
    assert result.epochs_done == 3  # epoch 1 sets the best; 2 and 3 don't beat it by 1e9
    assert json.loads((tmp_path / STATUS_NAME).read_text())["state"] == "early_stopped"


def test_busy_run_dir_is_refused(tiny_dataset, tmp_path):
    holds_lock = (
        "import sys, time; from lsx.files import FolderLock; "
        "held = FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(30)"
    )
    sleeper = subprocess.Popen(
        [sys.executable, "-c", holds_lock, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sleeper.stdout.readline().strip() == "locked"  # .lock holds its PID, flock held
        with pytest.raises(TrainingError, match=f"being trained by process {sleeper.pid}"):
            Trainer(model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path).fit()
    finally:
        sleeper.kill()
        sleeper.wait()
    # a stale lock (dead PID; the kernel released its flock) is taken over
    assert Trainer(model_for(tiny_dataset), tiny_dataset, cfg(epochs=1), tmp_path).fit().state


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match=r"'device' field of TrainConfig must be"):
        TrainConfig(device="tpu")


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "lsx", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_cli_trains_refuses_overwrite_and_resumes(tmp_path):
    args = [
        "train",
        "--model",
        "ae",
        "--data",
        "digits",
        "--out",
        str(tmp_path),
        "--name",
        "r",
        "--epochs",
        "2",
        "--latent-dim",
        "2",
        "--no-progress",
    ]
    proc = _cli(args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "epoch 2/2" in err
    again = _cli(args)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2
    assert "already holds a run. Pass --resume" in err
    more = _cli([*args[:-5], "--resume", "--epochs", "3", "--no-progress"])
    _, err = more.communicate(timeout=120)
    assert more.returncode == 0, err
    assert [m["epoch"] for m in read_jsonl(tmp_path / "r" / METRICS_NAME)] == [1, 2, 3]


def test_cli_unknown_dataset_and_kind_list_the_known_ones(tmp_path):
    proc = _cli(["train", "--model", "gan", "--data", "digits", "--out", str(tmp_path)])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"unknown model kind 'gan'; known kinds: {', '.join(sorted(MODELS))}" in err
    proc = _cli(["train", "--model", "ae", "--data", "cifar", "--out", str(tmp_path)])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "mnist5k" in err
    assert "cifar" in err


def test_sigterm_leaves_a_checkpoint_and_exits_cleanly(tmp_path):
    proc = _cli(
        [
            "train",
            "--model",
            "ae",
            "--data",
            "mnist5k",
            "--out",
            str(tmp_path),
            "--name",
            "s",
            "--epochs",
            "200",
            "--latent-dim",
            "2",
            "--hidden-dim",
            "8",
            "--no-progress",
        ]
    )
    run = tmp_path / "s"
    wait_until(
        lambda: (run / METRICS_NAME).exists() or proc.poll() is not None,
        90,
        every=0.2,
        what="the first metrics record (or the trainer's exit)",
    )
    assert (run / METRICS_NAME).exists(), proc.stderr.read() if proc.poll() is not None else ""
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 0
    assert json.loads((run / STATUS_NAME).read_text())["state"] == "stopped"
    load_checkpoint(run)
    assert not list(run.glob(".tmp-*"))
    assert not (run / ".lock").exists()


def test_sigkill_mid_training_leaves_a_loadable_checkpoint_that_resumes(tmp_path):
    proc = _cli(
        [
            "train",
            "--model",
            "vae",
            "--data",
            "digits",
            "--out",
            str(tmp_path),
            "--name",
            "k",
            "--epochs",
            "400",
            "--latent-dim",
            "2",
            "--no-progress",
        ]
    )
    run = tmp_path / "k"

    def status() -> dict:
        path = run / STATUS_NAME  # written atomically: absent or complete
        return json.loads(path.read_text()) if path.exists() else {}

    wait_until(
        lambda: len(read_jsonl(run / METRICS_NAME)) >= 2 and status().get("epoch", 0) >= 2,
        90,
        what="two metrics records and the status after them",
    )
    after_two = status()["global_step"]
    # land somewhere inside an epoch or a write: training has gone on past epoch 2's status
    wait_until(
        lambda: status().get("global_step", 0) > after_two,
        90,
        what=f"a status with global_step past {after_two}",
    )
    proc.kill()
    proc.communicate()
    load_checkpoint(run)
    done = len(read_jsonl(run / METRICS_NAME))
    resumed = _cli(
        [
            "train",
            "--out",
            str(tmp_path),
            "--name",
            "k",
            "--resume",
            "--epochs",
            str(done + 1),
            "--no-progress",
        ]
    )
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert read_jsonl(run / METRICS_NAME)[-1]["epoch"] == done + 1


def test_models_get_every_label_attribute_of_a_multi_attribute_dataset(tiny_dataset):
    from lsx.data.base import Dataset
    from lsx.train import label_matrix

    two = Dataset(
        "two",
        tiny_dataset.x_train,
        tiny_dataset.x_test,
        {"a": tiny_dataset.y_train, "b": 1 - tiny_dataset.y_train},
        {"a": tiny_dataset.y_test, "b": 1 - tiny_dataset.y_test},
        {"a": ("x", "y"), "b": ("u", "v")},
    )
    assert label_matrix(tiny_dataset, "train").shape == (48,)
    y = label_matrix(two, "test")
    assert y.shape == (16, 2)
    assert (y[:, 1] == 1 - y[:, 0]).all()
    seen = []
    trainer = Trainer(model_for(two, "ae"), two, cfg(epochs=1))
    original = trainer.model.loss
    trainer.model.loss = lambda x, y=None: seen.append(tuple(y.shape)) or original(x, y)
    trainer.fit()
    assert seen[0] == (8, 2)


def test_kill_between_checkpoint_and_metrics_line_is_repaired_on_resume(
    tiny_dataset, tmp_path, monkeypatch
):
    import lsx.train.trainer as train_module

    real_append = train_module.append_jsonl

    def dies_at_epoch_2(path, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt  # the checkpoint of epoch 2 is written, its metrics line not
        real_append(path, record)

    monkeypatch.setattr(train_module, "append_jsonl", dies_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path).fit()
    assert [m["epoch"] for m in read_jsonl(tmp_path / METRICS_NAME)] == [1]
    monkeypatch.setattr(train_module, "append_jsonl", real_append)
    resumed = Trainer(model_for(tiny_dataset), tiny_dataset, cfg(), tmp_path)
    resumed.resume()
    assert resumed.epoch == 2
    resumed.fit()
    assert [m["epoch"] for m in read_jsonl(tmp_path / METRICS_NAME)] == [1, 2, 3]
