"""The trainer: :class:`Trainer` fits a model, writes the run folder and honours stop signals;
the guarantees are listed in :mod:`lsx.train`."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lsx.checkpoint import METRICS_NAME, STATUS_NAME, TRAIN_STATE_NAME, save_checkpoint
from lsx.config import TrainConfig
from lsx.data.base import Dataset
from lsx.data.lazy import ImageSource
from lsx.distributed import DistContext, check_global_batch
from lsx.errors import LsxError, TrainingError
from lsx.files import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_with,
    read_jsonl,
)
from lsx.losses import check_objective, objective
from lsx.models.base import trusted_inputs
from lsx.train.control import FitResult, _progress_bar, _StopRequest, run_lock
from lsx.train.device import _matmul_precision, autocast_networks, resolve_device
from lsx.train.faults import (
    OPTIMISER_FIELDS,
    describe_changes,
    nonfinite_message,
    resume_changes,
    resume_command,
    saved_note,
    write_failure,
)
from lsx.train.feeds import (
    _batches,
    _LazyData,
    _MemoryData,
    data_info,
    evaluate,
    shard,
)

Callback = Callable[[dict[str, Any]], None]


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
        self.resumes: list[dict[str, Any]] = []  # resumes with changed settings; in train_state
        self._started_at = (0, 0)  # (epoch, global_step) where this fit starts
        self._saved: tuple[int, int] | None = None  # last complete checkpoint written
        self._state_saved: tuple[int, int] | None = None  # last train_state.pt written
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
            "train": asdict(self.config),  # what --resume compares its settings with
            "resumes": copy.deepcopy(self.resumes),
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
        self.resumes = list(state.get("resumes", []))

    def resume(self, recorded: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Continue from ``run_dir/train_state.pt`` (lsx-written; loaded with weights_only) with
        this trainer's config, by the rules of :mod:`lsx.train.faults`; ``recorded`` is the
        TrainConfig of ``config.json`` (for a state that does not hold its own). Returns
        ``{field: [recorded, new]}`` of the changed settings; ``lr`` and ``weight_decay`` go into
        the restored optimiser (a new ``lr`` also earns a new rollback), and every change into
        ``resumes``, the status and the next epoch's record (``resumed_with``).

        Raises
        ------
        TrainingError
            There is no train_state.pt.
        ConfigError
            A setting that cannot change on resume; nothing is loaded then.
        """
        path = self._path(TRAIN_STATE_NAME)
        if not path.is_file():
            raise TrainingError(f"{self.run_dir} has no {TRAIN_STATE_NAME} to resume from.")
        state = torch.load(path, map_location="cpu", weights_only=True)
        before = state.get("train") or recorded or {}
        changes = resume_changes(before, self.config, state) if before else {}
        self.load_state_dict(state)
        for name in OPTIMISER_FIELDS:  # the restored optimiser holds the old values
            for group in self.opt.param_groups if name in changes else ():
                group[name] = getattr(self.config, name)
        self.lr_halved = self.lr_halved and "lr" not in changes  # a new lr: a new rollback
        self._started_at = self._saved = self._state_saved = (self.epoch, self.global_step)
        if changes:
            at = {"epoch": self.epoch, "global_step": self.global_step}
            self.resumes.append({**at, "changed": changes})
        return changes

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
        self._state_saved = (self.epoch, self.global_step)
        with torch.random.fork_rng(devices=[]):  # a GPU model's CPU copy draws no random numbers
            save_checkpoint(
                self.model, self.model.config, self.run_dir, train=asdict(self.config),
                data=self.data,
            )  # fmt: skip
        self._saved = (self.epoch, self.global_step)

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
                full = write_failure(err, self.run_dir) if self.run_dir is not None else None
                if full is not None:  # status "failed", and a message instead of a traceback
                    again = "resume" if self._saved else "start the run again"
                    msg = f"{full[0]} {self._saved_note()} {full[1]}, then {again}."
                    raise self._failed(msg) from err
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
        # config.json (and the state) from the start: a run that fails before its first epoch
        # ends can be inspected, and resumed with new settings
        self.save()
        changed = [describe_changes(r["changed"]) for r in self.resumes if r["global_step"]
                   == self.global_step and r["epoch"] == self.epoch]  # fmt: skip
        self.write_status("running", f"resumed with {changed[-1]}" if changed else "")
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
                "lr": self.opt.param_groups[0]["lr"],  # in use at the epoch's end
            }
            resumed = [r for r in self.resumes if r["epoch"] == self.epoch - 1]
            if resumed:  # the settings changed by --resume during this epoch
                record["resumed_with"] = [
                    {"global_step": r["global_step"], "changed": r["changed"]} for r in resumed
                ]
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

    def _saved_note(self) -> str:
        return saved_note(self.run_dir, self._saved, self._state_saved, self._started_at)

    def _failed(self, msg: str) -> TrainingError:
        """Status "failed" with ``msg`` (or a note that even status.json could not be written)."""
        try:
            self.write_status("failed", msg)
        except Exception as err:  # a full disk may refuse status.json too
            msg += f" (status.json could not be updated either: {type(err).__name__})"
        return TrainingError(msg)

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
            resume = resume_command(self.run_dir) if self._saved is not None else None
            msg = nonfinite_message(
                self.config, self.global_step, lr, last, self._saved_note(), resume
            )
            raise self._failed(msg)
        # restore weights, optimiser and RNG; keep the position (epoch, step) where we are
        self.model.load_state_dict(good["model"])
        self.opt.load_state_dict(good["optimizer"])
        torch.set_rng_state(good["torch_rng"])
        for group in self.opt.param_groups:
            group["lr"] = lr / 2
        self.lr_halved = True
        self._emit({"event": "rollback", "global_step": self.global_step, "lr": lr / 2})

    def evaluate(self) -> dict[str, float]:
        """Mean loss terms over the test split (model in eval mode; summed over ranks)."""
        return evaluate(self.model, self.feed, self.dist, self._acc)
