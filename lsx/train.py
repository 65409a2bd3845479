"""Training: a small generic loop with callbacks, run as ``python -m lsx train`` (or in a subprocess
started by the app). One run folder holds everything needed to continue bit-for-bit.

Guarantees (field-notes.md C.3):
- every file in the run folder is written atomically; ``model.safetensors`` always loads;
- ``train_state.pt`` (lsx-written; model, optimiser, RNG, position) lets ``--resume`` continue
  from the exact step, also after SIGTERM/Ctrl-C in the middle of an epoch;
- a non-finite loss or gradient skips the step; after ``max_bad_steps`` in a row the last good
  state is restored and the learning rate halved once; if it happens again, training aborts with a
  message and the last good checkpoint stays untouched;
- one job per run folder (a lock file holding the PID).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.checkpoint import (
    METRICS_NAME,
    STATUS_NAME,
    TRAIN_STATE_NAME,
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_with,
    read_jsonl,
    save_checkpoint,
)
from lsx.config import TrainConfig
from lsx.data.base import Dataset
from lsx.errors import ConfigError, TrainingError
from lsx.losses import check_objective, objective

Callback = Callable[[dict[str, Any]], None]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for but CUDA is not available; use 'cpu'.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' was asked for but MPS is not available; use 'cpu'.")
    return torch.device(name)


def data_info(dataset: Dataset, image_size: int | None = None) -> dict[str, Any]:
    """What a run records about its dataset (config.json's ``data``)."""
    return {
        "spec": dataset.spec,
        "hash": dataset.content_hash,
        "image_size": image_size,
        "input_shape": list(dataset.input_shape),
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "label_names": {k: list(v) for k, v in dataset.label_names.items()},
    }


def label_matrix(dataset: Dataset, split: str) -> np.ndarray:
    """What ``model.loss`` gets as ``y``: the primary labels, shape (n,), when the dataset has one
    label attribute; all attributes in ``label_names`` order, shape (n, n_attributes), otherwise."""
    labels = getattr(dataset, f"labels_{split}")
    columns = [np.asarray(labels[attr], dtype=np.int64) for attr in dataset.label_names]
    return columns[0] if len(columns) == 1 else np.stack(columns, axis=1)


@dataclass
class FitResult:
    state: str  # completed | early_stopped | stopped
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


class _StopRequest:
    """SIGTERM/SIGINT set a flag the loop honours at the next step; a second signal kills."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # Python allows handlers only in the main thread
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One training job per run folder; a stale lock (dead PID) is taken over."""
    lock = Path(run_dir) / ".lock"
    if lock.exists():
        with contextlib.suppress(ValueError, OSError):
            pid = int(lock.read_text().strip() or 0)
            if pid and pid != os.getpid() and pid_alive(pid):
                raise TrainingError(
                    f"{run_dir} is being trained by process {pid}. Wait for it, stop it, or "
                    "train under another --name."
                )
    lock.write_text(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (the owner of a run's lock file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The epoch's shuffled index batches; a function of (seed, epoch) only, so resume can skip."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


class Trainer:
    """Fit ``model`` on ``dataset``; writes into ``run_dir`` when given (else trains in memory)."""

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        config: TrainConfig,
        run_dir: Path | None = None,
        *,
        callbacks: list[Callback] | None = None,
        data: dict[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.dataset, self.config = dataset, config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks or [])
        self.data = data or data_info(dataset)
        self.progress = progress
        self.opt = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # Data is small (<= a few hundred MB): keep it on the device, no loader workers.
        # (dataset arrays are read-only; copy so torch gets writable memory)
        self.x_train, self.y_train, self.x_test, self.y_test = (
            torch.from_numpy(a.copy()).to(self.device)
            for a in (
                dataset.x_train,
                label_matrix(dataset, "train"),
                dataset.x_test,
                label_matrix(dataset, "test"),
            )
        )
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best, self.bad_epochs, self.lr_halved = math.inf, 0, False
        self.last_finite_loss = math.nan
        self.history: list[dict[str, Any]] = []  # one record per epoch; saved in train_state
        self.stop = _StopRequest()
        check_objective(self.model, config, dataset.spec)  # e.g. colour jitter on grey data
        self._last_status = 0.0

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.opt.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "lr_halved": self.lr_halved,
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        for key in ("epoch", "step_in_epoch", "global_step", "best", "bad_epochs", "lr_halved"):
            setattr(self, key, state[key])
        self.history = list(state.get("history", []))

    def resume(self) -> None:
        """Continue from ``run_dir/train_state.pt`` (lsx-written; loaded with weights_only)."""
        path = self._path(TRAIN_STATE_NAME)
        if not path.is_file():
            raise TrainingError(f"{self.run_dir} has no {TRAIN_STATE_NAME} to resume from.")
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def _path(self, name: str) -> Path:
        assert self.run_dir is not None
        return self.run_dir / name

    def save(self) -> None:
        """Training state first, then the exported weights and config; each write is atomic."""
        if self.run_dir is None:
            return
        state = self.state_dict()
        atomic_write_with(self._path(TRAIN_STATE_NAME), lambda p: torch.save(state, p))
        save_checkpoint(
            self.model, self.model.config, self.run_dir, train=asdict(self.config), data=self.data
        )

    def write_status(self, state: str, message: str = "", force: bool = True, **extra: Any) -> None:
        now = time.monotonic()
        if self.run_dir is None or (not force and now - self._last_status < 1.0):
            return
        self._last_status = now
        status = {
            "state": state,
            "message": message,
            "epoch": self.epoch,
            "epochs": self.config.epochs,
            "global_step": self.global_step,
            "pid": os.getpid(),
            "updated": time.time(),
            **extra,
        }
        atomic_write_json(self._path(STATUS_NAME), status)

    def _snapshot(self) -> None:
        """Latent codes of fixed test points for this epoch (lsx.snapshots); opt-in."""
        if self.run_dir is not None and self.config.snapshots > 0:
            from lsx.snapshots import write_snapshot

            write_snapshot(
                self.run_dir, self.model, self.x_test, self.dataset.y_test, self.epoch,
                self.config.snapshots,
            )  # fmt: skip

    def _emit(self, event: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event)

    # ---------------------------------------------------------------- loop
    def fit(self) -> FitResult:
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        with (
            self.stop.installed(),
            run_lock(self.run_dir) if self.run_dir else contextlib.nullcontext(),
        ):
            return self._fit()

    def _fit(self) -> FitResult:
        cfg = self.config
        history = self.history
        if self.run_dir is not None and read_jsonl(self._path(METRICS_NAME)) != history:
            # killed between the checkpoint and its metrics line: the saved state is the truth
            atomic_write_bytes(
                self._path(METRICS_NAME),
                "".join(json.dumps(h, sort_keys=True) + "\n" for h in history).encode(),
            )
        self.write_status("running")
        if self.epoch == 0 and self.step_in_epoch == 0:
            self._snapshot()  # opt-in (TrainConfig.snapshots): the latent space before training
        good = self.state_dict()  # last good state, for rollback
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            sums, n_seen = self._train_epoch(good)
            if self.stop.requested:
                self.save()
                self.write_status("stopped", "stopped by signal; resume with --resume")
                return FitResult("stopped", self.epoch, history, "stopped by signal")
            seconds = time.perf_counter() - t0
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
            record = {
                "epoch": self.epoch,
                "seconds": round(seconds, 4),
                "samples_per_s": round(n_seen / max(seconds, 1e-9), 1),
            }
            record.update({f"train_{k}": v / max(n_seen, 1) for k, v in sums.items()})
            record.update({f"test_{k}": v for k, v in self.evaluate().items()})
            improved = record["test_loss"] < self.best - cfg.min_delta
            self.best = min(self.best, record["test_loss"])
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            history.append(record)  # before save(): train_state carries the metrics history
            self.save()
            self._snapshot()
            good = self.state_dict()
            if self.run_dir is not None:
                append_jsonl(self._path(METRICS_NAME), record)
            self._emit({"event": "epoch", **record, "epochs": cfg.epochs})
            self.write_status("running", **{k: record[k] for k in ("train_loss", "test_loss")})
            if cfg.patience and self.bad_epochs >= cfg.patience:
                msg = f"early stop: no better test loss for {cfg.patience} epochs"
                self.write_status("early_stopped", msg)
                return FitResult("early_stopped", self.epoch, history, msg)
        self.write_status("completed", f"trained {self.epoch} epochs")
        return FitResult("completed", self.epoch, history)

    def _train_epoch(self, good: dict[str, Any]) -> tuple[dict[str, float], int]:
        cfg = self.config
        self.model.train()
        batches = _batches(len(self.x_train), cfg.batch_size, cfg.seed, self.epoch)
        sums: dict[str, float] = {}
        n_seen, bad = 0, 0
        bar = _progress_bar(len(batches), self.epoch, cfg.epochs, self.progress)
        bar.update(self.step_in_epoch)
        for i in range(self.step_in_epoch, len(batches)):
            if self.stop.requested:
                break
            idx = batches[i].to(self.device)
            xb, yb = self.x_train[idx], self.y_train[idx]
            losses = objective(self.model, xb, yb, cfg, dataset=self.dataset.spec)
            self.opt.zero_grad(set_to_none=True)
            ok = bool(torch.isfinite(losses.total))
            if ok:
                losses.total.backward()
                norm = nn.utils.clip_grad_norm_(
                    self.model.parameters(),
                    cfg.grad_clip if cfg.grad_clip > 0 else math.inf,
                    error_if_nonfinite=False,
                )
                ok = bool(torch.isfinite(norm))
            if not ok:
                bad += 1
                self._emit({"event": "bad_step", "global_step": self.global_step, "count": bad})
                if bad >= cfg.max_bad_steps:
                    self._roll_back(good, losses)
                    bad = 0
                self.step_in_epoch, self.global_step = i + 1, self.global_step + 1
                continue
            bad = 0
            self.opt.step()
            self.step_in_epoch, self.global_step = i + 1, self.global_step + 1
            floats = losses.as_floats()
            self.last_finite_loss = floats["loss"]
            for k, v in floats.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            n_seen += len(idx)
            bar.update(1)
            if self.callbacks:
                self._emit({"event": "step", "global_step": self.global_step, **floats})
            bar.set_postfix(loss=f"{floats['loss']:.4g}")
            self.write_status(
                "running",
                force=False,
                step_in_epoch=i + 1,
                steps_per_epoch=len(batches),
                loss=floats["loss"],
            )
        bar.close()
        return sums, n_seen

    def _roll_back(self, good: dict[str, Any], losses: Any) -> None:
        lr = self.opt.param_groups[0]["lr"]
        if self.lr_halved:
            msg = (
                f"Training stopped: the loss or its gradient was NaN/Inf for "
                f"{self.config.max_bad_steps} steps in a row at step {self.global_step} "
                f"(lr={lr:g}), even after rolling back and halving the learning rate. Last "
                f"finite loss: {self.last_finite_loss:.6g}. The last good checkpoint is kept; "
                "lower --lr, check the data for extreme values, or reduce --beta."
            )
            self.write_status("failed", msg)
            raise TrainingError(msg)
        # restore weights, optimiser and RNG; keep the position (epoch, step) where we are
        self.model.load_state_dict(good["model"])
        self.opt.load_state_dict(good["optimizer"])
        torch.set_rng_state(good["torch_rng"])
        for group in self.opt.param_groups:
            group["lr"] = lr / 2
        self.lr_halved = True
        self._emit({"event": "rollback", "global_step": self.global_step, "lr": lr / 2})

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss terms over the test split (model in eval mode)."""
        self.model.eval()
        sums: dict[str, float] = {}
        for idx in torch.arange(len(self.x_test), device=self.device).split(1024):
            floats = self.model.loss(self.x_test[idx], self.y_test[idx]).as_floats()
            for k, v in floats.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
        self.model.train()
        return {k: v / max(len(self.x_test), 1) for k, v in sums.items()}


def _progress_bar(total: int, epoch: int, epochs: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # only the CLI draws bars

    return tqdm(
        total=total,
        desc=f"epoch {epoch + 1}/{epochs}",
        leave=False,
        disable=not enabled,
        dynamic_ncols=True,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m lsx.train ...`` is ``python -m lsx train ...``."""
    from lsx.cli import main as cli_main

    return cli_main(["train", *(argv if argv is not None else __import__("sys").argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())
