"""Training faults end with a true message (issue #18, items 5-7), through the CLI.

5. ``--resume`` with changed settings: the optimiser settings are applied to the restored
   optimiser and recorded with both values; what resume cannot honour (the model, the data, the
   seed, the batch size mid-epoch, fewer epochs than done) is refused, naming field and values.
6. A run that fails before its first epoch ends: config.json exists from the start, the NaN
   message says which checkpoint the folder keeps, and ``--resume`` with new settings works.
7. A full disk: "The disk is full (N MB free at PATH)", status "failed", nothing half-written;
   injected into the writers (always) and on a real 2 MB tmpfs (when this process may mount one).
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import lsx.checkpoint
import lsx.files
import lsx.train.trainer
from lsx.checkpoint import (
    CONFIG_NAME,
    METRICS_NAME,
    STATUS_NAME,
    TRAIN_STATE_NAME,
    load_checkpoint,
)
from lsx.cli import main
from lsx.config import TrainConfig
from lsx.data import open_data
from lsx.errors import TrainingError
from lsx.files import read_jsonl
from lsx.models import build_model, dataset_fields, make_config
from lsx.train import Trainer, data_info

BASE = ["--model", "ae", "--data", "digits", "--latent-dim", "2", "--no-progress"]


def train(tmp_path: Path, name: str, *extra: str) -> int:
    return main(["train", "--out", str(tmp_path), "--name", name, *extra])


def fresh(tmp_path: Path, name: str, *extra: str) -> int:
    return train(tmp_path, name, *BASE, *extra)


def resume(tmp_path: Path, name: str, *extra: str) -> int:
    return train(tmp_path, name, "--resume", "--no-progress", *extra)


def header(run: Path) -> dict:
    return json.loads((run / CONFIG_NAME).read_text())


def state(run: Path) -> dict:
    return torch.load(run / TRAIN_STATE_NAME, map_location="cpu", weights_only=True)


def status(run: Path) -> dict:
    return json.loads((run / STATUS_NAME).read_text())


def no_temp_files(run: Path) -> bool:
    return not list(run.glob(".tmp-*"))


# ------------------------------------------------------------------ 5. resume with new settings


def test_resume_applies_a_new_lr_and_weight_decay_and_records_both_values(tmp_path, capsys):
    run = tmp_path / "r"
    assert fresh(tmp_path, "r", "--epochs", "1", "--lr", "0.001") == 0
    capsys.readouterr()
    assert resume(tmp_path, "r", "--epochs", "2", "--lr", "0.05", "--weight-decay", "0.01") == 0
    err = capsys.readouterr().err
    assert "changed settings: epochs 1 -> 2, lr 0.001 -> 0.05, weight_decay 0.0 -> 0.01" in err
    # what config.json records is what the optimiser used
    assert header(run)["train"]["lr"] == 0.05
    groups = state(run)["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [0.05] * len(groups)
    assert [g["weight_decay"] for g in groups] == [0.01] * len(groups)
    records = read_jsonl(run / METRICS_NAME)
    assert [r["lr"] for r in records] == [0.001, 0.05]
    assert "resumed_with" not in records[0]
    changed = records[1]["resumed_with"][0]["changed"]
    assert changed == {"epochs": [1, 2], "lr": [0.001, 0.05], "weight_decay": [0.0, 0.01]}
    assert state(run)["resumes"][0]["changed"]["lr"] == [0.001, 0.05]


def test_the_new_lr_is_the_one_the_steps_use(tiny_dataset, tmp_path):
    """A resumed epoch at lr 0.05 equals the same epoch trained with the optimiser's lr set by
    hand; the recorded lr (0.01) would give other weights."""

    def trainer(lr: float, run: Path, epochs: int = 2) -> Trainer:
        torch.manual_seed(0)
        cfg = make_config("ae", input_shape=tiny_dataset.input_shape, latent_dim=2, hidden_dim=8)
        c = TrainConfig(epochs=epochs, batch_size=8, lr=lr, device="cpu")
        return Trainer(build_model(cfg), tiny_dataset, c, run)

    trainer(0.01, tmp_path / "a", epochs=1).fit()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    resumed = trainer(0.05, tmp_path / "a")
    assert resumed.resume() == {"epochs": [1, 2], "lr": [0.01, 0.05]}
    resumed.fit()
    by_hand = trainer(0.01, tmp_path / "b")
    assert by_hand.resume() == {"epochs": [1, 2]}
    for group in by_hand.opt.param_groups:
        group["lr"] = 0.05
    by_hand.fit()
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, by_hand.model.state_dict()[k]), k


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--latent-dim", "8"], r"--latent-dim 8 cannot change on --resume: the run was built "
         r"with 2\. .*only training settings"),
        (["--model", "vae"], r"--model 'vae' cannot change on --resume: the run was built with "
         r"'ae'"),
        (["--data", "mnist5k"], r"--data 'mnist5k' cannot change on --resume: the run was built"
         r" with 'digits'"),
        (["--beta", "2"], r"--beta 2 cannot change on --resume: the run was built with a model of "
         r"kind 'ae', which has no beta"),
        (["--seed", "3"], r"--seed 3 cannot change on --resume: the run was trained with "
         r"seed=0, .*recorded but not used"),
        (["--epochs", "1"], r"--epochs 1 is fewer than the 2 epochs this run has already done"),
    ],
)  # fmt: skip
def test_resume_refuses_what_it_cannot_honour_and_changes_nothing(
    tmp_path, capsys, flags, expected
):
    run = tmp_path / "r"
    assert fresh(tmp_path, "r", "--epochs", "2") == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert resume(tmp_path, "r", *flags) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: ")
    assert re.search(expected, err), err
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # refused before anything was written


def test_resume_accepts_the_run_own_model_and_data_flags(tmp_path):
    assert fresh(tmp_path, "r", "--epochs", "1") == 0
    assert resume(tmp_path, "r", *BASE, "--epochs", "2") == 0  # same values: not a change
    assert [r["epoch"] for r in read_jsonl(tmp_path / "r" / METRICS_NAME)] == [1, 2]


def _stopped_mid_epoch(run: Path) -> None:
    """Train digits (as the CLI would) and stop by signal after 3 steps of epoch 1."""
    ds = open_data("digits")
    torch.manual_seed(0)
    model = build_model(make_config("ae", **dataset_fields("ae", ds), latent_dim=2))
    trainer = Trainer(model, ds, TrainConfig(epochs=2, batch_size=128), run, data=data_info(ds))

    def stop(event: dict) -> None:
        if event.get("event") == "step" and event["global_step"] == 3:
            trainer.stop.requested = True

    trainer.callbacks.append(stop)
    assert trainer.fit().state == "stopped"


def test_batch_size_changes_only_at_an_epoch_end(tmp_path, capsys):
    _stopped_mid_epoch(tmp_path / "mid")
    assert state(tmp_path / "mid")["step_in_epoch"] == 3
    assert resume(tmp_path, "mid", "--batch-size", "64") == 2
    assert (
        "--batch-size 64 cannot change in the middle of an epoch: the run stopped inside epoch 1 "
        "with batch_size=128" in capsys.readouterr().err
    )
    assert resume(tmp_path, "mid") == 0  # the old size finishes the run
    assert fresh(tmp_path, "end", "--epochs", "1") == 0
    assert resume(tmp_path, "end", "--epochs", "2", "--batch-size", "64") == 0
    record = read_jsonl(tmp_path / "end" / METRICS_NAME)[-1]
    assert record["resumed_with"][0]["changed"]["batch_size"] == [128, 64]
    assert header(tmp_path / "end")["train"]["batch_size"] == 64


# ------------------------------------------------------------------ 6. an early failure


def test_a_nan_stop_before_the_first_epoch_says_what_exists_and_resumes_with_new_settings(
    tmp_path, capsys
):
    run = tmp_path / "nan"
    assert fresh(tmp_path, "nan", "--epochs", "1", "--lr", "1e30", "--grad-clip", "0") == 2
    err = capsys.readouterr().err
    assert "last good checkpoint" not in err
    assert (
        f"{run} keeps the checkpoint written when training started (the initial weights, step 0)"
        in err
    )
    assert f"python -m lsx train --out {tmp_path} --name nan --resume --lr" in err
    assert status(run)["state"] == "failed"
    assert header(run)["train"]["lr"] == 1e30  # inspectable: the settings that failed
    model, _ = load_checkpoint(run)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert resume(tmp_path, "nan", "--lr", "0.001") == 0
    records = read_jsonl(run / METRICS_NAME)
    assert records[0]["resumed_with"][0]["changed"] == {"lr": [1e30, 0.001]}
    assert records[0]["lr"] == 0.001
    assert header(run)["train"]["lr"] == 0.001
    assert status(run)["state"] == "completed"


def test_config_json_exists_while_the_first_epoch_runs(tiny_dataset, tmp_path):
    seen = []
    cfg = make_config("ae", input_shape=tiny_dataset.input_shape, latent_dim=2, hidden_dim=8)
    c = TrainConfig(epochs=1, batch_size=8, device="cpu")
    trainer = Trainer(build_model(cfg), tiny_dataset, c, tmp_path)

    def look(event: dict) -> None:
        if event.get("event") == "step" and event["global_step"] == 1:
            seen.append((status(tmp_path)["state"], header(tmp_path)["train"]["epochs"]))

    trainer.callbacks.append(look)
    trainer.fit()
    assert seen == [("running", 1)]


def test_a_nan_stop_after_an_epoch_names_that_epoch(tiny_dataset, tmp_path):
    from tests.test_train import NaNAt

    cfg = make_config("ae", input_shape=tiny_dataset.input_shape, latent_dim=2, hidden_dim=8)
    c = TrainConfig(epochs=3, batch_size=8, lr=0.01, device="cpu")
    trainer = Trainer(build_model(cfg), tiny_dataset, c, tmp_path)
    # epochs of 6 steps: 8-10 bad (rollback), 11 bad (skipped, epoch 2 ends), 12-14 bad: stop
    trainer.model.loss = NaNAt(trainer, set(range(8, 10_000)))
    with pytest.raises(
        TrainingError, match=r"keeps the checkpoint of epoch 2 \(step 12\)\. Resume"
    ):
        trainer.fit()
    memory = Trainer(build_model(cfg), tiny_dataset, c)
    memory.model.loss = NaNAt(memory, set(range(2, 10_000)))
    with pytest.raises(TrainingError, match=r"Nothing was saved \(training in memory"):
        memory.fit()


def test_resume_of_a_folder_without_a_checkpoint_says_what_to_do(tmp_path, capsys):
    run = tmp_path / "early"
    run.mkdir()
    (run / STATUS_NAME).write_text(json.dumps({"state": "failed", "epoch": 0, "epochs": 2}))
    assert resume(tmp_path, "early") == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint to resume from (its status.json says 'failed')" in err
    assert "Start the run again without --resume" in err
    assert resume(tmp_path, "missing") == 2
    assert "there is no run 'missing'" in capsys.readouterr().err
    assert fresh(tmp_path, "early", "--epochs", "1") == 0  # as the message says


# ------------------------------------------------------------------ 7. a full disk


def _fail_writes(monkeypatch, name: str, after: int, error: BaseException) -> None:
    """Every atomic write of ``name`` after the first ``after`` ones writes 100 bytes of its
    temporary file, then raises ``error`` (as a writer does when the disk fills)."""
    real = lsx.files.atomic_write_with
    calls = {"n": 0}

    def write(path: Path, writer) -> None:
        if Path(path).name == name:
            calls["n"] += 1
            if calls["n"] > after:

                def torn(tmp: Path) -> None:
                    tmp.write_bytes(b"\0" * 100)
                    raise error

                return real(path, torn)
        return real(path, writer)

    monkeypatch.setattr(lsx.train.trainer, "atomic_write_with", write)
    monkeypatch.setattr(lsx.checkpoint, "atomic_write_with", write)


@pytest.mark.parametrize(
    ("name", "error", "resumes_at"),
    [
        (TRAIN_STATE_NAME, OSError(errno.ENOSPC, "No space left on device"), 0),
        (TRAIN_STATE_NAME, RuntimeError("[enforce fail at inline_container.cc:672] . unexpected "
                                        "pos 736384 vs 736272"), 0),
        # the state of epoch 1 was written, its weights were not: resume continues from it
        ("model.safetensors", RuntimeError("Error while serializing: I/O error: No space left on "
                                           "device (os error 28)"), 12),
    ],
)  # fmt: skip
def test_a_full_disk_fails_with_a_message_status_failed_and_nothing_half_written(
    tmp_path, capsys, monkeypatch, name, error, resumes_at
):
    if isinstance(error, RuntimeError) and "pos" in str(error):
        monkeypatch.setattr("lsx.train.faults._file_size_limit", lambda: None)  # no ulimit -f
    run = tmp_path / "full"
    _fail_writes(monkeypatch, name, after=1, error=error)  # the start's save works, epoch 1's not
    assert fresh(tmp_path, "full", "--epochs", "2") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("error: The disk is full (") == 1
    assert f"MB free at {run}); writing the run's files failed" in err
    assert "keeps the checkpoint written when training started" in err
    assert "Free some space, then resume." in err
    assert status(run)["state"] == "failed"
    assert status(run)["message"].startswith("The disk is full (")
    assert no_temp_files(run)
    assert state(run)["global_step"] == resumes_at  # whole files: the previous or the new
    if resumes_at:
        assert f"Its train_state.pt is newer (epoch 1, step {resumes_at})" in err
    load_checkpoint(run)
    monkeypatch.undo()  # space freed
    assert resume(tmp_path, "full") == 0
    assert [r["epoch"] for r in read_jsonl(run / METRICS_NAME)] == [1, 2]


def test_a_file_size_limit_is_named_as_such(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lsx.train.faults._file_size_limit", lambda: 8192)
    error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2560 vs 2454")
    _fail_writes(monkeypatch, TRAIN_STATE_NAME, after=0, error=error)  # the very first write
    assert fresh(tmp_path, "limit", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "A file reached the file-size limit of this process (ulimit -f: 8,192 bytes;" in err
    assert "No checkpoint was written" in err
    assert "Raise the limit (ulimit -f unlimited), then start the run again." in err
    assert not (tmp_path / "limit" / CONFIG_NAME).exists()
    assert status(tmp_path / "limit")["state"] == "failed"


def test_other_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    _fail_writes(monkeypatch, TRAIN_STATE_NAME, after=1, error=PermissionError(13, "denied"))
    with pytest.raises(PermissionError):  # a bug or a setup problem: the traceback stays
        fresh(tmp_path, "other", "--epochs", "1")
