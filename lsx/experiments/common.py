"""What the reproduction experiments share: train-or-reuse of a run folder, and mean ± std cells.

A finished run is reused only when everything that made it is the same: the training settings,
the *full* model config (kind, beta, k, network, latent size ...) and the content hash of the
data. A run folder name never decides reuse on its own.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np


def reusable(run_dir: Path, config: Any, train: Any, data_hash: str) -> bool:
    """True when ``run_dir`` holds a completed run made with ``config``, ``train`` and data of
    content hash ``data_hash``.

    Parameters
    ----------
    run_dir : Path
    config : ModelConfig
    train : TrainConfig
    data_hash : str
        ``Dataset.content_hash`` of the data the run must have been trained on.

    Returns
    -------
    bool
    """
    from lsx.checkpoint import read_header, read_status
    from lsx.config import config_to_dict
    from lsx.errors import LsxError

    run_dir = Path(run_dir)
    if not run_dir.is_dir() or read_status(run_dir).get("state") != "completed":
        return False
    try:
        header = read_header(run_dir)
    except LsxError:
        return False
    return (
        header.get("train") == asdict(train)
        and header.get("config") == config_to_dict(config)
        and (header.get("data") or {}).get("hash") == data_hash
    )


def train_or_reuse(run_dir: Path, config: Any, train: Any, ds: Any) -> tuple[Any, float, bool]:
    """Train ``config`` on ``ds`` into ``run_dir``, or load it when :func:`reusable`.

    A folder that is not reusable (other settings, other data, unfinished) is deleted and
    trained again.

    Returns
    -------
    model : nn.Module
        In eval mode, gradients off.
    seconds : float
        Training wall time; for a reused run, the training time its metrics recorded.
    reused : bool
    """
    import torch

    from lsx.checkpoint import METRICS_NAME, load_checkpoint
    from lsx.files import read_jsonl
    from lsx.models import build_model
    from lsx.train import Trainer, data_info

    run_dir = Path(run_dir)
    if reusable(run_dir, config, train, ds.content_hash):
        model, _ = load_checkpoint(run_dir)
        recorded = sum(r.get("seconds", 0.0) for r in read_jsonl(run_dir / METRICS_NAME))
        return model.eval().requires_grad_(False), float(recorded), True
    if run_dir.exists():
        shutil.rmtree(run_dir)
    torch.manual_seed(train.seed)
    start = time.perf_counter()
    trainer = Trainer(build_model(config), ds, train, run_dir, data=data_info(ds))
    trainer.fit()
    return trainer.model.eval().requires_grad_(False), time.perf_counter() - start, False


def mean_std(values: list[float | None]) -> tuple[float, float | None, int]:
    """Mean, sample standard deviation (ddof=1; None for one value) and count of the values
    that are not None; ``(nan, None, 0)`` when there are none."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(a):
        return math.nan, None, 0
    return float(a.mean()), (float(a.std(ddof=1)) if len(a) > 1 else None), len(a)


def pm(values: list[float | None], fmt: str = "{:.2f}") -> str:
    """``"m ± s"`` over several values, ``"m (n = 1)"`` for one (a standard deviation of one
    value is undefined, never 0), ``"–"`` for none."""
    mean, std, n = mean_std(values)
    if n == 0:
        return "–"
    if std is None:
        return f"{fmt.format(mean)} (n = 1)"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


RULE = (
    "A wins against B when its mean exceeds B's by more than the sum of their sample standard "
    "deviations over seeds (for a lower-is-better metric: falls below it by more than that sum), "
    "loses in the mirror case, and ties otherwise. With one seed there is no standard deviation "
    "and no verdict ('n = 1')."
)


def compare(a: list[float], b: list[float], *, higher_is_better: bool = True) -> str:
    """``"wins"``, ``"ties"`` or ``"loses"`` for ``a`` against ``b`` by :data:`RULE`;
    ``"n = 1"`` when either side has fewer than two values."""
    ma, sa, na = mean_std(list(a))
    mb, sb, nb = mean_std(list(b))
    if na < 2 or nb < 2 or sa is None or sb is None:
        return "n = 1"
    diff = (ma - mb) if higher_is_better else (mb - ma)
    if diff > sa + sb:
        return "wins"
    if -diff > sa + sb:
        return "loses"
    return "ties"
