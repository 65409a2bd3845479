"""Training: a small generic loop with callbacks, run as ``python -m lsx train`` (or in a subprocess
started by the app), or as ``torchrun --nproc-per-node=N -m lsx train`` for distributed
data-parallel training. One run folder holds everything needed to continue bit-for-bit.

Guarantees (field-notes.md C.3, C.5):
- every file in the run folder is written atomically; ``model.safetensors`` always loads;
- ``train_state.pt`` (lsx-written; model, optimiser, RNG, position) lets ``--resume`` continue
  from the exact step, also after SIGTERM/Ctrl-C in the middle of an epoch;
- a non-finite loss or gradient skips the step; after ``max_bad_steps`` in a row the last good
  state is restored and the learning rate halved once; if it happens again, training aborts with a
  message and the last good checkpoint stays untouched;
- one job per run folder (a lock file holding the PID).

Data: a :class:`~lsx.data.base.Dataset` is kept whole on the training device; a lazy
:class:`~lsx.data.lazy.ImageSource` (``npy:``, a lazy folder) is read batch by batch through a
torch DataLoader (``TrainConfig.workers`` processes), never whole.

Distributed (torchrun; :mod:`lsx.distributed`): ``batch_size`` is the global batch. Every rank
walks the same per-epoch permutation (a function of seed and epoch, as DistributedSampler with
``set_epoch``) and takes its contiguous share of each global batch; its loss is weighted by
``n_local * world_size / n_batch`` so that DDP's gradient average equals the gradient of the
global-batch mean, also for the last, smaller batch (a rank whose share is empty runs one sample
with weight 0). For kinds whose loss is a per-sample mean and draws no noise (``ae``) a run on N
processes therefore matches the run on one up to float rounding; noisy kinds (``vae``, ``dae``)
draw independent noise per rank. Only rank 0 writes files; metric sums, sample counts and the
test loss are summed over ranks; stop requests and non-finite steps are agreed at every step.

GPU path: no host-device synchronisation per step beyond one flag (finite step? stop?); metric
sums stay on the device and are read once per epoch (and at most once a second for the status
line). ``precision="bf16"`` autocasts the model's networks, ``compile`` wraps the training step
in ``torch.compile``.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.checkpoint import METRICS_NAME, STATUS_NAME, TRAIN_STATE_NAME, save_checkpoint
from lsx.config import TrainConfig
from lsx.data.base import Dataset
from lsx.data.lazy import ImageSource, torch_dataset
from lsx.distributed import DistContext, check_global_batch
from lsx.errors import ConfigError, LsxError, TrainingError
from lsx.files import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_with,
    read_jsonl,
)
from lsx.losses import check_objective, objective
from lsx.models.base import trusted_inputs

Callback = Callable[[dict[str, Any]], None]
EVAL_CHUNK = 1024  # test rows per forward pass in evaluate()


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for but CUDA is not available; use 'cpu'.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' was asked for but MPS is not available; use 'cpu'.")
    return torch.device(name)


def data_info(dataset: Dataset | ImageSource, image_size: int | None = None) -> dict[str, Any]:
    """What a run records about its dataset or lazy source (config.json's ``data``)."""
    if isinstance(dataset, ImageSource):
        n_train, n_test = (len(dataset.split_indices(s)) for s in ("train", "test"))
    else:
        n_train, n_test = len(dataset.x_train), len(dataset.x_test)
    return {
        "spec": dataset.spec,
        "hash": dataset.content_hash,
        "image_size": image_size,
        "input_shape": list(dataset.input_shape),
        "n_train": n_train,
        "n_test": n_test,
        "label_names": {k: list(v) for k, v in dataset.label_names.items()},
    }


def label_matrix(dataset: Dataset, split: str) -> np.ndarray:
    """What ``model.loss`` gets as ``y``: the primary labels, shape (n,), when the dataset has one
    label attribute; all attributes in ``label_names`` order, shape (n, n_attributes), otherwise."""
    labels = getattr(dataset, f"labels_{split}")
    return _stack_labels([labels[attr] for attr in dataset.label_names])


def _stack_labels(columns: list[np.ndarray]) -> np.ndarray:
    columns = [np.asarray(c, dtype=np.int64) for c in columns]
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


def command_has(pid: int, *args: str) -> bool | None:
    """Whether the command line of process ``pid`` holds every one of ``args`` (e.g. ``"lsx",
    "train"``), so a recycled PID is never signalled; None where it cannot be read (no /proc)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = {a.decode(errors="replace") for a in cmd}
    return all(a in words for a in args)


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The epoch's shuffled index batches; a function of (seed, epoch) only, so resume can skip
    and every rank of a distributed run sees the same global batches."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=gen).split(batch_size))


def shard(batch: torch.Tensor, rank: int, world_size: int) -> tuple[torch.Tensor, float, int]:
    """This rank's share of a global batch, its loss weight and its sample count.

    Parameters
    ----------
    batch : Tensor of shape (n_batch,)
        Row indices of one global batch.
    rank, world_size : int

    Returns
    -------
    local : Tensor of shape (n_local,)
        The rank's contiguous part (``tensor_split``: sizes differ by at most one). An empty part
        (a last batch smaller than the world) becomes the batch's first row with weight 0, so
        the rank still joins DDP's gradient all-reduce without changing the gradient.
    weight : float
        ``n_local * world_size / n_batch``: DDP averages the ranks' gradients, so weighting each
        rank's batch-mean loss by it gives the gradient of the mean over the global batch.
    n_local : int
        Samples this rank adds to the metric sums (0 for the stand-in row).
    """
    local = batch.tensor_split(world_size)[rank]
    if len(local) == 0:
        return batch[:1], 0.0, 0
    return local, len(local) * world_size / len(batch), len(local)


# ------------------------------------------------------------------------------ data feeds


class _MemoryData:
    """A whole Dataset on the training device (the fast path when it fits)."""

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        # dataset arrays are read-only; copy so torch gets writable memory
        self.x_train, self.y_train, self.x_test, self.y_test = (
            torch.from_numpy(a.copy()).to(device)
            for a in (
                dataset.x_train,
                label_matrix(dataset, "train"),
                dataset.x_test,
                label_matrix(dataset, "test"),
            )
        )
        self.n_train, self.n_test = len(self.x_train), len(self.x_test)
        self.y_test_primary = dataset.y_test
        self.device = device

    def train_batches(self, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, ...]]:
        if not batches:
            return
        flat = torch.cat(batches).to(self.device)  # one host-to-device copy per epoch
        for idx in flat.split([len(b) for b in batches]):
            yield self.x_train[idx], self.y_train[idx]

    def test_batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = positions.to(self.device)
        return self.x_test[idx], self.y_test[idx]

    @property
    def snapshot_x(self) -> Any:
        return self.x_test


class _LazyRows:
    """``x_test[positions]`` read from a lazy source (what lsx.snapshots indexes)."""

    def __init__(self, data: _LazyData) -> None:
        self.data, self.device = data, data.device

    def __getitem__(self, positions: torch.Tensor) -> torch.Tensor:
        return self.data.test_batch(positions)[0]


class _LazyData:
    """A lazy ImageSource read batch by batch through ``lsx.data.lazy.torch_dataset`` and a
    DataLoader (``workers`` processes); only the labels are held in memory."""

    def __init__(self, source: ImageSource, device: torch.device, workers: int) -> None:
        self.source, self.device, self.workers = source, device, workers
        self.train_rows = np.asarray(source.split_indices("train"), dtype=np.int64)
        self.test_rows = np.asarray(source.split_indices("test"), dtype=np.int64)
        self.y = _stack_labels([source.labels[attr] for attr in source.label_names])
        self.n_train, self.n_test = len(self.train_rows), len(self.test_rows)
        self.y_test_primary = np.asarray(source.y)[self.test_rows]

    def train_batches(self, batches: list[torch.Tensor]) -> Iterable[tuple[torch.Tensor, ...]]:
        loader = torch.utils.data.DataLoader(
            torch_dataset(self.source, self.train_rows),  # one read() per batch (__getitems__)
            batch_sampler=[b.tolist() for b in batches],  # positions in train_rows
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # leaves the global RNG (noise) alone
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def test_batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.test_rows[positions.cpu().numpy()]
        x, y = torch.from_numpy(self.source.read(rows)), torch.from_numpy(self.y[rows])
        return x.to(self.device), y.to(self.device)

    @property
    def snapshot_x(self) -> Any:
        return _LazyRows(self)


# ------------------------------------------------------------------------------ GPU path


def _to_float(out: Any) -> Any:
    """bf16 tensors (also inside tuples, lists, dicts) back to float32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype == torch.bfloat16 else out
    if isinstance(out, tuple | list):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out


@contextlib.contextmanager
def autocast_networks(model: nn.Module, device_type: str, enabled: bool = True) -> Iterator[None]:
    """Run the model's sub-networks (its child modules) under bf16 autocast, with float32
    outputs, while inside; the loss terms are then computed in float32 outside autocast.

    Losses that autocast refuses on CUDA (``binary_cross_entropy``) and reductions that need
    the range (KL, ELBO) stay in float32; only the encoder/decoder matmuls and convolutions
    run in bf16. The model is unchanged on exit.
    """
    if not enabled:
        yield
        return
    wrapped: list[nn.Module] = []
    todo = list(model.children())
    while todo:
        child = todo.pop()
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            todo.extend(child.children())  # containers have no forward; wrap their members
            continue

        def forward(*args: Any, _inner: Callable = child.forward, **kwargs: Any) -> Any:
            with torch.autocast(device_type, dtype=torch.bfloat16):
                return _to_float(_inner(*args, **kwargs))

        child.forward = forward  # instance attribute shadows the class's forward
        wrapped.append(child)
    try:
        yield
    finally:
        for child in wrapped:
            del child.forward


@contextlib.contextmanager
def _matmul_precision(device: torch.device, precision: str) -> Iterator[None]:
    """TF32 matmuls on CUDA for ``precision="tf32"`` (process-wide, restored on exit)."""
    if precision != "tf32" or device.type != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


class _Objective(nn.Module):
    """The training loss as a module's ``forward``, so DDP and torch.compile see one call."""

    def __init__(self, model: nn.Module, config: TrainConfig, spec: str) -> None:
        super().__init__()
        self.model, self.config, self.spec = model, config, spec

    def forward(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        losses = objective(self.model, x, y, self.config, dataset=self.spec)
        return losses.total, losses.terms


# ------------------------------------------------------------------------------ trainer


class Trainer:
    """Fit ``model`` on ``dataset``; writes into ``run_dir`` when given (else trains in memory).

    Parameters
    ----------
    model : nn.Module
        An lsx model (``loss``, ``encode``, ``config``).
    dataset : Dataset or ImageSource
        A Dataset is moved whole to the device; an ImageSource is read lazily, batch by batch.
    config : TrainConfig
    run_dir : Path or None
    callbacks : list of callables, optional
        Called with event dicts: ``epoch`` (the metrics record), ``step`` (``global_step``,
        ``step_in_epoch``; no loss values, which would cost a device sync per step),
        ``bad_step`` and ``rollback``.
    data : dict, optional
        What config.json records about the data (default: :func:`data_info`).
    progress : bool
        Draw a progress bar (rank 0 only).
    dist : DistContext, optional
        The distributed context (:func:`lsx.distributed.initialized`); default one process.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset | ImageSource,
        config: TrainConfig,
        run_dir: Path | None = None,
        *,
        callbacks: list[Callback] | None = None,
        data: dict[str, Any] | None = None,
        progress: bool = False,
        dist: DistContext | None = None,
    ) -> None:
        self.dist = dist or DistContext()
        check_global_batch(config.batch_size, self.dist.world_size)
        self.device = self.dist.device or resolve_device(config.device)
        self.model = model.to(self.device)
        self.dataset, self.config = dataset, config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks or [])
        self.data = data or data_info(dataset)
        self.progress = progress and self.dist.is_main
        self.opt = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        if isinstance(dataset, ImageSource):
            self.feed: _MemoryData | _LazyData = _LazyData(dataset, self.device, config.workers)
        else:
            self.feed = _MemoryData(dataset, self.device)
            self.x_train, self.y_train = self.feed.x_train, self.feed.y_train
            self.x_test, self.y_test = self.feed.x_test, self.feed.y_test
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best, self.bad_epochs, self.lr_halved = math.inf, 0, False
        self.history: list[dict[str, Any]] = []  # one record per epoch; saved in train_state
        self.stop = _StopRequest()
        check_objective(self.model, config, dataset.spec)  # e.g. colour jitter on grey data
        self._last_status = 0.0
        self._keys: list[str] | None = None  # "loss" + the model's term names, from step 1
        self._last_loss: torch.Tensor | None = None  # on the device; read only for messages
        self._stopping = False  # stop agreed by every rank
        self._acc = torch.float32 if self.device.type == "mps" else torch.float64
        self._loss_fn = self._build_loss_fn()
        if self.dist.distributed and self.dist.rank > 0:
            torch.manual_seed(config.seed + 7919 * self.dist.rank)  # own noise per rank

    def _build_loss_fn(self) -> nn.Module:
        module: nn.Module = _Objective(self.model, self.config, self.dataset.spec)
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids)
        if self.config.compile != "off":
            mode = None if self.config.compile == "default" else self.config.compile
            module = torch.compile(module, mode=mode)
        return module

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
        ranks = state.get("torch_rng_ranks")
        if ranks is not None and len(ranks) == self.dist.world_size:
            torch.set_rng_state(ranks[self.dist.rank])  # the same world size: exact
        elif self.dist.rank == 0:
            torch.set_rng_state(state["torch_rng"])
        else:  # another world size: a fresh stream per rank
            torch.manual_seed(self.config.seed + 7919 * self.dist.rank + state["global_step"])
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
        """Training state first, then the exported weights and config; each write is atomic.

        Collective under torchrun (the ranks' RNG states are gathered); only rank 0 writes.
        """
        rngs = self.dist.gather_objects(torch.get_rng_state()) if self.dist.distributed else None
        if self.run_dir is None or not self.dist.is_main:
            return
        state = self.state_dict()
        if rngs is not None:
            state["torch_rng_ranks"] = rngs
        atomic_write_with(self._path(TRAIN_STATE_NAME), lambda p: torch.save(state, p))
        save_checkpoint(
            self.model, self.model.config, self.run_dir, train=asdict(self.config), data=self.data
        )

    def write_status(self, state: str, message: str = "", force: bool = True, **extra: Any) -> None:
        if self.run_dir is None or not self.dist.is_main or (not force and not self._status_due()):
            return
        self._last_status = time.monotonic()
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
        if self.dist.distributed:
            status["world_size"] = self.dist.world_size
        atomic_write_json(self._path(STATUS_NAME), status)

    def _status_due(self) -> bool:
        return time.monotonic() - self._last_status >= 1.0

    def _snapshot(self) -> None:
        """Latent codes of fixed test points for this epoch (lsx.snapshots); opt-in, rank 0."""
        if self.run_dir is not None and self.config.snapshots > 0 and self.dist.is_main:
            from lsx.snapshots import write_snapshot

            write_snapshot(
                self.run_dir, self.model, self.feed.snapshot_x, self.feed.y_test_primary,
                self.epoch, self.config.snapshots,
            )  # fmt: skip

    def _emit(self, event: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event)

    # ---------------------------------------------------------------- loop
    def fit(self) -> FitResult:
        main = self.dist.is_main and self.run_dir is not None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        with (
            self.stop.installed(),
            run_lock(self.run_dir) if main else contextlib.nullcontext(),
            _matmul_precision(self.device, self.config.precision),
            autocast_networks(self.model, self.device.type, self.config.precision == "bf16"),
            trusted_inputs(),  # no isfinite(x) read-back per loss call; the NaN guard catches it
        ):
            try:
                return self._fit()
            except LsxError:
                raise
            except Exception as err:
                if not self.dist.distributed:
                    raise
                msg = (
                    f"distributed training failed on rank {self.dist.rank} of "
                    f"{self.dist.world_size} at step {self.global_step} ({type(err).__name__}: "
                    f"{err}). Another process probably crashed or timed out; see its log. The "
                    "last complete checkpoint is kept; continue with --resume."
                )
                self.write_status("failed", msg)
                raise TrainingError(msg) from err

    def _fit(self) -> FitResult:
        cfg = self.config
        history = self.history
        if self._writes() and read_jsonl(self._path(METRICS_NAME)) != history:
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
            sums, n_seen, finished = self._train_epoch(good)
            if not finished:  # stop agreed in the middle of the epoch
                self.save()
                self.write_status("stopped", "stopped by signal; resume with --resume")
                self.dist.barrier()
                return FitResult("stopped", self.epoch, history, "stopped by signal")
            train = self._reduce(sums, n_seen)  # one device read, summed over ranks
            seconds = time.perf_counter() - t0
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
            record = {
                "epoch": self.epoch,
                "seconds": round(seconds, 4),
                "samples_per_s": round(train.pop("n") / max(seconds, 1e-9), 1),
            }
            record.update({f"train_{k}": v for k, v in train.items()})
            record.update({f"test_{k}": v for k, v in self.evaluate().items()})
            improved = record["test_loss"] < self.best - cfg.min_delta
            self.best = min(self.best, record["test_loss"])
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            history.append(record)  # before save(): train_state carries the metrics history
            self.save()
            self._snapshot()
            good = self.state_dict()
            if self._writes():
                append_jsonl(self._path(METRICS_NAME), record)
            self.dist.barrier()  # rank 0's files are complete before anyone goes on
            self._emit({"event": "epoch", **record, "epochs": cfg.epochs})
            self.write_status("running", **{k: record[k] for k in ("train_loss", "test_loss")})
            if self._stopping:
                self.write_status("stopped", "stopped by signal; resume with --resume")
                return FitResult("stopped", self.epoch, history, "stopped by signal")
            if cfg.patience and self.bad_epochs >= cfg.patience:
                msg = f"early stop: no better test loss for {cfg.patience} epochs"
                self.write_status("early_stopped", msg)
                return FitResult("early_stopped", self.epoch, history, msg)
        self.write_status("completed", f"trained {self.epoch} epochs")
        return FitResult("completed", self.epoch, history)

    def _writes(self) -> bool:
        return self.run_dir is not None and self.dist.is_main

    def _train_epoch(self, good: dict[str, Any]) -> tuple[torch.Tensor | None, int, bool]:
        """One epoch from ``step_in_epoch``: (device sums of [loss, *terms] x n, this rank's
        sample count, whether the epoch finished)."""
        cfg, ctx = self.config, self.dist
        self.model.train()
        batches = _batches(self.feed.n_train, cfg.batch_size, cfg.seed, self.epoch)
        start = self.step_in_epoch
        shards = [shard(b, ctx.rank, ctx.world_size) for b in batches[start:]]
        feed = self.feed.train_batches([s[0] for s in shards])
        sums: torch.Tensor | None = None
        n_seen, bad = 0, 0
        bar = _progress_bar(len(batches), self.epoch, cfg.epochs, self.progress)
        bar.update(start)
        for i, (xb, yb), (_, weight, n_local) in zip(
            range(start, len(batches)), feed, shards, strict=True
        ):
            ctx.maybe_fault(self.global_step)
            ok, vals = self._step(xb, yb, weight)
            # the one host read per step; OR-ed over ranks with the stop flag (gloo, no GPU)
            any_bad, stop = ctx.any(not bool(ok), self.stop.requested)
            if any_bad:
                bad += 1
                self._emit({"event": "bad_step", "global_step": self.global_step, "count": bad})
                if bad >= cfg.max_bad_steps:
                    self._roll_back(good)
                    bad = 0
                self.step_in_epoch, self.global_step = i + 1, self.global_step + 1
            else:
                bad = 0
                self.opt.step()
                self.step_in_epoch, self.global_step = i + 1, self.global_step + 1
                self._last_loss = vals[0]
                sums = vals * n_local if sums is None else sums + vals * n_local
                n_seen += n_local
                bar.update(1)
                if self.callbacks:
                    self._emit(
                        {"event": "step", "global_step": self.global_step, "step_in_epoch": i + 1}
                    )
                self._log_step(i + 1, len(batches), bar)
            if stop or (not ctx.distributed and self.stop.requested):  # no peer to agree with
                self._stopping = True
                if i + 1 < len(batches):
                    break  # else the epoch is complete: record it, then stop
        bar.close()
        return sums, n_seen, self.step_in_epoch == len(batches)

    def _step(
        self, xb: torch.Tensor, yb: torch.Tensor, weight: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward, clip. Returns (finite flag, detached [loss, *terms]) on the
        device; nothing is read to the host here."""
        self.opt.zero_grad(set_to_none=True)
        total, terms = self._loss_fn(xb, yb)
        if self._keys is None:
            self._keys = ["loss", *terms]
        (total * weight if weight != 1.0 else total).backward()  # always: DDP needs every rank
        clip = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip, error_if_nonfinite=False)
        ok = torch.isfinite(norm) & torch.isfinite(total.detach())
        vals = torch.stack([total.detach(), *(terms[k].detach() for k in self._keys[1:])])
        return ok, vals.to(self._acc)

    def _log_step(self, step: int, steps: int, bar: Any) -> None:
        """At most once a second (rank 0): read the loss for the status line and the bar."""
        shown = self.run_dir is not None or self.progress
        if not shown or not self.dist.is_main or not self._status_due() or self._last_loss is None:
            return
        loss = float(self._last_loss)
        bar.set_postfix(loss=f"{loss:.4g}")
        self.write_status("running", step_in_epoch=step, steps_per_epoch=steps, loss=loss)

    def _reduce(self, sums: torch.Tensor | None, n: int) -> dict[str, float]:
        """Means of the summed terms over every rank's samples, plus the total count ``n``."""
        keys = self._keys or ["loss"]
        if sums is None:
            sums = torch.zeros(len(keys), dtype=self._acc, device=self.device)
        packed = torch.cat([sums, torch.tensor([n], dtype=self._acc, device=self.device)])
        values = self.dist.all_reduce_sum(packed).tolist()
        total_n = values[-1]
        out = {k: v / max(total_n, 1) for k, v in zip(keys, values[:-1], strict=True)}
        return {**out, "n": total_n}

    def _roll_back(self, good: dict[str, Any]) -> None:
        lr = self.opt.param_groups[0]["lr"]
        if self.lr_halved:
            last = float(self._last_loss) if self._last_loss is not None else math.nan
            msg = (
                f"Training stopped: the loss or its gradient was NaN/Inf for "
                f"{self.config.max_bad_steps} steps in a row at step {self.global_step} "
                f"(lr={lr:g}), even after rolling back and halving the learning rate. Last "
                f"finite loss: {last:.6g}. The last good checkpoint is kept; "
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
        """Mean loss terms over the test split (model in eval mode; summed over ranks)."""
        self.model.eval()
        ctx = self.dist
        positions = torch.arange(self.feed.n_test).tensor_split(ctx.world_size)[ctx.rank]
        chunks = [(p, len(p)) for p in positions.split(EVAL_CHUNK)] or [(torch.arange(1), 0)]
        keys: list[str] = []
        sums: torch.Tensor | None = None
        for pos, n in chunks:  # n = 0: a stand-in row that keeps the ranks' shapes equal
            losses = self.model.loss(*self.feed.test_batch(pos))
            keys = ["loss", *losses.terms]
            vals = torch.stack([losses.total, *losses.terms.values()]).to(self._acc) * n
            sums = vals if sums is None else sums + vals
        assert sums is not None
        packed = torch.cat(
            [sums, torch.tensor([len(positions)], dtype=self._acc, device=sums.device)]
        )
        values = ctx.all_reduce_sum(packed).tolist()
        self.model.train()
        return {k: v / max(values[-1], 1) for k, v in zip(keys, values[:-1], strict=True)}


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
