"""Training on a lazy ImageSource: batches come through a DataLoader, the source is never read
whole, and the run is the same as training on the same images held in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lsx.checkpoint import CONFIG_NAME, METRICS_NAME, load_checkpoint
from lsx.config import TrainConfig
from lsx.data.lazy import ImageSource
from lsx.files import read_jsonl
from lsx.models import build_model, make_config
from lsx.snapshots import read_snapshots, snapshot_epochs
from lsx.train import EVAL_CHUNK, Trainer

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "samples_per_s")


class CountingSource(ImageSource):
    """The tiny dataset's rows (train, then test) behind ``read``, which logs each read's size.

    The log is a file, so reads in DataLoader worker processes are counted too.
    """

    def __init__(self, dataset, log: Path) -> None:
        self.x = np.concatenate([dataset.x_train, dataset.x_test])
        self.n_train = len(dataset.x_train)
        self.spec, self.input_shape = "counting", dataset.input_shape
        self.labels = {"label": np.concatenate([dataset.y_train, dataset.y_test])}
        self.label_names = dict(dataset.label_names)
        self.content_hash, self.log = "c0ffee", log

    def split_indices(self, split: str) -> np.ndarray:
        n = len(self.x)
        lo, hi = {"train": (0, self.n_train), "test": (self.n_train, n), "all": (0, n)}[split]
        return np.arange(lo, hi, dtype=np.int64)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {len(idx)}\n")
        return self.x[idx].copy()

    def reads(self) -> list[tuple[int, int]]:
        lines = self.log.read_text().split() if self.log.exists() else []
        return [(int(p), int(n)) for p, n in zip(lines[::2], lines[1::2], strict=True)]


def model_for(kind: str = "ae"):
    torch.manual_seed(0)
    return build_model(make_config(kind, input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16))


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "lr": 1e-2, "device": "cpu", **kw})


def strip(history):
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def test_lazy_source_trains_like_the_same_data_in_memory(tiny_dataset, tmp_path):
    memory = Trainer(model_for(), tiny_dataset, cfg(snapshots=6), tmp_path / "memory")
    memory.fit()
    src = CountingSource(tiny_dataset, tmp_path / "reads.log")
    lazy = Trainer(model_for(), src, cfg(snapshots=6), tmp_path / "lazy")
    assert not hasattr(lazy, "x_train")  # nothing was loaded up front
    lazy.fit()
    assert strip(lazy.history) == strip(memory.history)  # the same batches, bit for bit
    for key, value in memory.model.state_dict().items():
        assert torch.equal(lazy.model.state_dict()[key], value), key
    # one read per train batch (6 per epoch), one per evaluation (16 test rows < EVAL_CHUNK),
    # one per snapshot (6 sampled test rows): never the whole source (64 rows)
    assert 16 < EVAL_CHUNK
    assert sorted(n for _, n in src.reads()) == sorted([8] * 12 + [16] * 2 + [6] * 3)
    assert snapshot_epochs(tmp_path / "lazy") == [0, 1, 2]
    lazy_z, memory_z = (read_snapshots(tmp_path / r, [0, 1, 2]) for r in ("lazy", "memory"))
    for a, b in zip(lazy_z, memory_z, strict=True):
        np.testing.assert_array_equal(a, b)
    info = json.loads((tmp_path / "lazy" / CONFIG_NAME).read_text())["data"]
    assert (info["spec"], info["n_train"], info["n_test"]) == ("counting", 48, 16)
    load_checkpoint(tmp_path / "lazy")


def test_dataloader_workers_read_in_other_processes_with_the_same_result(tiny_dataset, tmp_path):
    src0 = CountingSource(tiny_dataset, tmp_path / "w0.log")
    inline = Trainer(model_for("vae"), src0, cfg()).fit().history
    src2 = CountingSource(tiny_dataset, tmp_path / "w2.log")
    workers = Trainer(model_for("vae"), src2, cfg(workers=2)).fit().history
    memory = Trainer(model_for("vae"), tiny_dataset, cfg()).fit().history
    # vae draws noise from the global RNG: the loader must not draw from it
    assert strip(workers) == strip(inline) == strip(memory)
    pids = {p for p, n in src2.reads() if n == 8}
    assert os.getpid() not in pids
    assert len(pids) >= 2  # two worker processes shared the batches
    assert {p for p, _ in src0.reads()} == {os.getpid()}


def test_cli_trains_from_npy_lazily_with_workers(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(120, 8, 8)) * 255).astype(np.uint8)
    np.save(tmp_path / "imgs.npy", x)
    args = ["train", "--model", "ae", "--data", f"npy:{tmp_path / 'imgs.npy'}", "--epochs", "1"]
    args += ["--latent-dim", "2", "--workers", "1", "--batch-size", "16", "--no-progress"]
    args += ["--out", str(tmp_path), "--name", "n", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lsx", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read lazily" in proc.stderr
    data = json.loads((tmp_path / "n" / CONFIG_NAME).read_text())["data"]
    assert data["lazy"] is True
    assert data["n_train"] + data["n_test"] == 120
    assert [m["epoch"] for m in read_jsonl(tmp_path / "n" / METRICS_NAME)] == [1]


@pytest.mark.parametrize("bad", ["-1", "x"])
def test_cli_refuses_bad_workers(bad, tmp_path):
    from lsx.cli import main

    if bad == "x":
        with pytest.raises(SystemExit):
            main(["train", "--workers", bad, "--out", str(tmp_path)])
    else:
        assert main(["train", "--workers", bad, "--out", str(tmp_path), "--data", "digits"]) == 2


def test_cli_reads_a_large_folder_lazily_without_the_flag(tmp_path, monkeypatch, capsys):
    """Above LAZY_FOLDER_ABOVE images a folder is not loaded whole, even without --lazy."""
    from PIL import Image

    import lsx.data
    from lsx import cli

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, size=(8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 10)
    argv = ["train", "--model", "ae", "--data", f"folder:{tmp_path / 'imgs'}", "--image-size"]
    argv += ["8", "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path), "--name", "f"]
    assert cli.main([*argv, "--no-progress"]) == 0
    assert "read on demand" in capsys.readouterr().err
    data = json.loads((tmp_path / "f" / CONFIG_NAME).read_text())["data"]
    assert data["lazy"] is True
    assert data["n_train"] + data["n_test"] == 12
    monkeypatch.setattr(lsx.data, "LAZY_FOLDER_ABOVE", 12)  # at the limit: loaded in memory
    assert cli.main([*argv[:-1], "g", "--no-progress"]) == 0
    assert "lazy" not in json.loads((tmp_path / "g" / CONFIG_NAME).read_text())["data"]
