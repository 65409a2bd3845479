"""Per-epoch latent snapshots of a fixed sample of test points, for watching a latent space form.

Opt-in: ``TrainConfig.snapshots = N`` (``python -m lsx train --snapshots N``; the app's Train page
turns it on). The trainer then writes, into ``<run_dir>/snapshots/``:

- ``index.json``: the test-split row ids of the sample (a per-class sample of N points, seed 0)
  and their primary labels, written once;
- ``epoch-0000.npy`` (before training) and ``epoch-XXXX.npy`` after each epoch: the latent codes
  ``model.encode(x)`` of those points, float32 of shape (N, latent_numel), each file written
  atomically, so a reader never sees half a file.

Encoding runs in eval mode under ``torch.inference_mode`` with torch's CPU RNG forked, so turning
snapshots on does not change the training run (same weights, same losses).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.analysis.projection import sample_per_class
from lsx.files import atomic_write_bytes, atomic_write_json

SNAPSHOT_DIR = "snapshots"
INDEX_NAME = "index.json"
_EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.npy$")


def snapshot_path(run_dir: Path, epoch: int) -> Path:
    """``<run_dir>/snapshots/epoch-XXXX.npy``."""
    return Path(run_dir) / SNAPSHOT_DIR / f"epoch-{int(epoch):04d}.npy"


def write_snapshot(
    run_dir: Path, model: nn.Module, x_test: torch.Tensor, y_test: np.ndarray, epoch: int, n: int
) -> Path:
    """Encode the fixed sample of test points and write ``epoch-XXXX.npy`` atomically.

    Parameters
    ----------
    run_dir : Path
    model : nn.Module
        Put in eval mode for the encoding and back in its previous mode afterwards.
    x_test : Tensor of shape (n_test, C, H, W)
        On the model's device.
    y_test : ndarray of shape (n_test,)
        Primary labels (the sample is drawn per class).
    epoch : int
        0 before training, else the number of epochs done.
    n : int
        Sample size (>= 1); the index written the first time fixes the sample for the run.

    Returns
    -------
    Path
        The file written.
    """
    folder = Path(run_dir) / SNAPSHOT_DIR
    index = read_index(run_dir)
    if index is None:
        ids = sample_per_class(np.asarray(y_test), int(n), seed=0)
        index = {"split": "test", "ids": ids.tolist(), "labels": np.asarray(y_test)[ids].tolist()}
        atomic_write_json(folder / INDEX_NAME, index)
    ids_t = torch.as_tensor(index["ids"], dtype=torch.long, device=x_test.device)
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        z = torch.cat([model.encode(x_test[i]).flatten(1) for i in ids_t.split(1024)])
    model.train(was_training)
    buf = io.BytesIO()
    np.save(buf, z.float().cpu().numpy(), allow_pickle=False)
    path = snapshot_path(run_dir, epoch)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_index(run_dir: Path) -> dict[str, Any] | None:
    """The sample's ``{"split", "ids", "labels"}``, or None when the run has no snapshots."""
    path = Path(run_dir) / SNAPSHOT_DIR / INDEX_NAME
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(index, dict) and isinstance(index.get("ids"), list)
    return index if ok and isinstance(index.get("labels"), list) else None


def snapshot_epochs(run_dir: Path) -> list[int]:
    """Epochs with a snapshot file, ascending."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := _EPOCH_FILE.match(name)))


def read_snapshots(run_dir: Path, epochs: list[int]) -> list[np.ndarray]:
    """The snapshot arrays of ``epochs`` (``allow_pickle=False``), each (N, latent_numel)."""
    return [np.load(snapshot_path(run_dir, e), allow_pickle=False) for e in epochs]
