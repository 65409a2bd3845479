"""Distributed data-parallel training under torchrun, 2 CPU processes over gloo.

The subprocess tests share one scenario on a small ``npy:`` dataset (so it also goes through the
lazy DataLoader path): a rank crashes in epoch 2, the run resumes under torchrun, one rank alone
gets SIGTERM in epoch 3, the run resumes again and finishes. Every epoch's losses and the final
weights are compared with one process training the same global batches in this process (``ae``:
a per-sample mean loss with no noise, so the gradients agree up to float rounding).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lsx.checkpoint import METRICS_NAME, STATUS_NAME, load_checkpoint
from lsx.config import TrainConfig
from lsx.distributed import DistContext, check_global_batch
from lsx.errors import ConfigError
from lsx.files import read_jsonl
from lsx.models import build_model, dataset_fields, make_config
from lsx.train import Trainer, shard

ROOT = Path(__file__).resolve().parents[1]
N_ROWS = 610  # 61 test rows, 549 train rows: 9 steps of 64 per epoch, the last one 37 (odd)
STEPS_PER_EPOCH = 9
EPOCHS = 3
TRAIN_ARGS = ["--model", "ae", "--latent-dim", "2", "--hidden-dim", "16", "--batch-size", "64"]
TRAIN_ARGS += ["--device", "cpu", "--seed", "0", "--no-progress"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSX_FAULT")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", LSX_DIST_TIMEOUT_S="60", **extra)
    return env


def _torchrun(args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    return subprocess.run(
        [*cmd, "-m", "lsx", "train", *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def npy_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three classes of 8x8 grey blobs as uint8, with a labels file: ``npy:PATH``."""
    rng = np.random.default_rng(0)
    y = np.arange(N_ROWS) % 3
    x = rng.uniform(0, 60, size=(N_ROWS, 8, 8))
    for c in range(3):
        x[y == c, 2 * c : 2 * c + 3, :] += 180
    folder = tmp_path_factory.mktemp("ddp-data")
    np.save(folder / "blobs.npy", x.astype(np.uint8))
    np.save(folder / "blobs.labels.npy", y.astype(np.int64))
    return f"npy:{folder / 'blobs.npy'}"


def _reference(spec: str) -> Trainer:
    """One process, the same global batches, in this process (what the CLI does)."""
    from lsx.data.lazy import open_source

    src = open_source(spec)
    torch.manual_seed(0)
    config = make_config("ae", **dataset_fields("ae", src), latent_dim=2, hidden_dim=16)
    cfg = TrainConfig(epochs=EPOCHS, batch_size=64, device="cpu", seed=0)
    trainer = Trainer(build_model(config), src, cfg)
    trainer.fit()
    return trainer


def test_crash_resume_and_one_rank_sigterm_match_one_process(npy_spec, tmp_path):
    run = tmp_path / "ddp"
    base = [*TRAIN_ARGS, "--data", npy_spec, "--out", str(tmp_path), "--name", "ddp"]

    # 1. rank 1 dies (os._exit) at step 12, in epoch 2: both exit non-zero, in bounded time
    t0 = time.monotonic()
    crash = _torchrun([*base, "--epochs", str(EPOCHS)], LSX_FAULT_RANK="1", LSX_FAULT_STEP="12")
    assert time.monotonic() - t0 < 90
    out = crash.stdout + crash.stderr
    assert crash.returncode != 0, out
    assert re.search(r"exitcode\s*:\s*13", out), out  # rank 1: the injected crash
    assert "distributed training failed on rank 0 of 2 at step 12" in out  # rank 0 raised
    status = json.loads((run / STATUS_NAME).read_text())
    assert status["state"] == "failed"
    assert "--resume" in status["message"]
    assert [m["epoch"] for m in read_jsonl(run / METRICS_NAME)] == [1]  # written once, by rank 0
    load_checkpoint(run)  # the epoch-1 checkpoint is complete
    assert torch.load(run / "train_state.pt", weights_only=True)["global_step"] == 9
    assert not list(run.glob(".tmp-*"))
    assert not (run / ".lock").exists()

    # 2. resume under torchrun; only rank 1 gets SIGTERM (before step 21): both stop after it
    stop = _torchrun(
        ["--out", str(tmp_path), "--name", "ddp", "--resume", "--no-progress"],
        LSX_FAULT_RANK="1",
        LSX_FAULT_STEP="21",
        LSX_FAULT_KIND="sigterm",
    )
    assert stop.returncode == 0, stop.stderr
    status = json.loads((run / STATUS_NAME).read_text())
    assert (status["state"], status["global_step"], status["world_size"]) == ("stopped", 22, 2)
    assert [m["epoch"] for m in read_jsonl(run / METRICS_NAME)] == [1, 2]

    # 3. resume again to the end
    done = _torchrun(["--out", str(tmp_path), "--name", "ddp", "--resume", "--no-progress"])
    assert done.returncode == 0, done.stderr
    assert json.loads((run / STATUS_NAME).read_text())["state"] == "completed"
    metrics = read_jsonl(run / METRICS_NAME)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]

    ref = _reference(npy_spec)
    for got, want in zip(metrics, ref.history, strict=True):
        # epoch 3's train loss covers only the steps after the stop; the others are whole
        keys = ["test_loss"] + (["train_loss"] if got["epoch"] < 3 else [])
        for key in keys:
            assert got[key] == pytest.approx(want[key], rel=1e-5), (got["epoch"], key)
    loaded, _ = load_checkpoint(run)  # a plain model: no "module." prefix in the saved weights
    for key, value in ref.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=1e-4, atol=1e-6)


def test_world_size_that_does_not_divide_the_batch_fails_on_every_rank(npy_spec, tmp_path):
    # torchrun's environment, set by hand, so each rank's exit code and message are seen
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lsx", "train", *TRAIN_ARGS, "--batch-size", "63"]
            + ["--data", npy_spec, "--out", str(tmp_path), "--name", "odd", "--epochs", "1"],
            cwd=ROOT,
            env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert "batch_size=63 is the global batch" in err
        assert "divisible by the world size 2" in err
        assert "nearest valid batch sizes are 62 or 64" in err
    assert not (tmp_path / "odd").exists()


def test_global_batch_message_names_both_numbers_and_the_nearest_valid_sizes():
    check_global_batch(64, 4)  # divisible: fine
    check_global_batch(7, 1)
    with pytest.raises(ConfigError, match=r"batch_size=10 .* world size 4 .* are 8 or 12"):
        check_global_batch(10, 4)
    with pytest.raises(ConfigError, match=r"batch_size=3 .* world size 4 .* sizes are 4\."):
        check_global_batch(3, 4)


def test_trainer_refuses_a_world_size_that_does_not_divide_the_batch(tiny_dataset):
    model = build_model(make_config("ae", input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16))
    with pytest.raises(ConfigError, match="divisible by the world size 3"):
        Trainer(model, tiny_dataset, TrainConfig(batch_size=8), dist=DistContext(0, 3))


@pytest.mark.parametrize(("n_batch", "world"), [(64, 2), (37, 2), (5, 3), (2, 4), (1, 2)])
def test_weighted_shards_give_the_global_batch_mean(n_batch, world):
    """DDP averages the ranks' gradients; the weighted shard means must average to the global
    mean (checked on per-sample values, the gradient of a mean loss being linear in them)."""
    batch = torch.randperm(100)[:n_batch]
    values = torch.randn(100, dtype=torch.float64)
    parts = [shard(batch, r, world) for r in range(world)]
    assert sum(n for _, _, n in parts) == n_batch
    assert torch.equal(torch.cat([b for b, _, n in parts if n]), batch)  # a partition, in order
    averaged = sum(w * values[b].mean() for b, w, _ in parts) / world
    assert float(averaged) == pytest.approx(float(values[batch].mean()), rel=1e-12)
