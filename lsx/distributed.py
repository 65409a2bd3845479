"""Distributed data-parallel helpers: ``torchrun --nproc-per-node=N -m lsx train ...`` (and
``-m lsx encode ...``, where the ranks share one latent store: :mod:`lsx.latents.writer`).

torchrun starts N copies of the same command and sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in each one's environment;
:func:`launched_by_torchrun` reads them and :func:`initialized` opens the process group (NCCL on
CUDA, gloo on the CPU) with a timeout, so a rank whose peer died stops waiting instead of hanging
for ever, and closes it at the end.

A :class:`DistContext` is what the trainer sees: rank, world size, device, and the few
collectives it needs (sums of metrics, agreement on flags, a barrier). Flags (stop requested,
non-finite step) travel over a separate gloo group, so an NCCL run needs no GPU synchronisation
for them. A single process is a ``DistContext()`` with ``world_size=1`` whose collectives do
nothing.

Fault injection for tests (read only here, in :func:`fault_at`): ``LSX_FAULT_RANK=r`` and
``LSX_FAULT_STEP=s`` make rank ``r`` exit at once with code 13 (``os._exit``: no cleanup, as a
crash) just before global step ``s``; with ``LSX_FAULT_KIND=sigterm`` that rank sends itself
SIGTERM there instead (a stop request that only one rank received). In ``lsx encode`` the step
is the number of batches that rank has encoded in this attempt.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lsx.errors import ConfigError

TIMEOUT_ENV = "LSX_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0  # a collective waits at most this long for a peer (saves included)
FAULT_RANK_ENV, FAULT_STEP_ENV, FAULT_KIND_ENV = (
    "LSX_FAULT_RANK",
    "LSX_FAULT_STEP",
    "LSX_FAULT_KIND",
)
FAULT_EXIT_CODE = 13


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher using its variables) started this process."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def env_world_size() -> int:
    """``WORLD_SIZE`` from the launcher, 1 when not launched by torchrun."""
    return int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else 1


def timeout_s() -> float:
    """The process-group timeout in seconds (``LSX_DIST_TIMEOUT_S``, default 600)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError as err:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} must be a number of seconds, e.g. 600.") from err
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} must be > 0 seconds.")
    return value


def check_global_batch(batch_size: int, world_size: int) -> None:
    """Raise ConfigError unless ``world_size`` divides the global ``batch_size``.

    Every rank takes an equal share of each global batch, so the batch must split evenly; the
    message names the nearest valid batch sizes.
    """
    if world_size <= 1 or batch_size % world_size == 0:
        return
    below = (batch_size // world_size) * world_size
    above = below + world_size
    nearest = f"{below} or {above}" if below > 0 else f"{above}"
    raise ConfigError(
        f"batch_size={batch_size} is the global batch (summed over processes) and must be "
        f"divisible by the world size {world_size} (torchrun --nproc-per-node x nodes); the "
        f"nearest valid batch sizes are {nearest}. Pass --batch-size {above}, or run "
        "with a number of processes that divides it."
    )


def fault_at() -> tuple[int, int, str] | None:
    """``(rank, global_step, kind)`` of an injected fault (LSX_FAULT_RANK, LSX_FAULT_STEP,
    LSX_FAULT_KIND = "exit" or "sigterm"); None when not asked for."""
    rank, step = os.environ.get(FAULT_RANK_ENV), os.environ.get(FAULT_STEP_ENV)
    if rank is None or step is None:
        return None
    kind = os.environ.get(FAULT_KIND_ENV, "exit")
    if kind not in ("exit", "sigterm"):
        raise ConfigError(f"{FAULT_KIND_ENV}={kind!r} must be 'exit' or 'sigterm'.")
    return int(rank), int(step), kind


@dataclass
class DistContext:
    """Rank, world size, device and collectives of one training process.

    ``DistContext()`` is a single process: every collective returns its input.

    Attributes
    ----------
    rank, world_size, local_rank : int
    device : torch.device or None
        The device this rank trains on (None: let the trainer resolve ``TrainConfig.device``).
    backend : str or None
        ``"nccl"`` or ``"gloo"``; None for a single process.
    control : ProcessGroup or None
        The gloo group that carries flags (the default group when the backend is gloo).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    backend: str | None = None
    control: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics, status and snapshots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (on its device; NCCL tensors stay on the GPU)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over ranks (over the gloo control group: no GPU sync)."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([int(bool(f)) for f in flags], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return tuple(bool(v) for v in t.tolist())

    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (pickled over the control group; lsx objects
        only, e.g. RNG states)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (e.g. a run name that contains the time)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (on the control group), e.g. after rank 0 wrote a checkpoint."""
        if self.distributed:
            dist.barrier(group=self.control)

    def maybe_fault(self, global_step: int) -> None:
        """Crash (or SIGTERM itself) when LSX_FAULT_RANK/LSX_FAULT_STEP name this rank and
        step (tests; see the module docstring)."""
        fault = fault_at()
        if fault is None or fault[:2] != (self.rank, global_step):
            return
        if fault[2] == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            os._exit(FAULT_EXIT_CODE)


def _rank_device(device: str, local_rank: int) -> torch.device:
    """The device of this rank: CUDA rank ``local_rank`` for 'auto'/'cuda' when available."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but CUDA is not available; use 'cpu'.")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are "
                "visible; start at most that many processes per node (--nproc-per-node)."
            )
        return torch.device("cuda", local_rank)
    if device.startswith("cuda:"):
        raise ConfigError(
            f"device={device!r} pins one GPU, but under torchrun each process takes the GPU of "
            "its LOCAL_RANK; pass --device cuda (or auto)."
        )
    return torch.device(device)


@contextlib.contextmanager
def initialized(device: str = "auto") -> Iterator[DistContext]:
    """Open the process group torchrun asked for; a plain ``DistContext()`` otherwise.

    Parameters
    ----------
    device : str
        ``TrainConfig.device``: 'auto' and 'cuda' give each rank the GPU of its LOCAL_RANK and
        the NCCL backend; 'cpu' gives gloo.

    Yields
    ------
    DistContext
        The group is destroyed on a normal exit; after an error it is left to the process exit
        (destroying an NCCL group whose peer died can block).
    """
    if not launched_by_torchrun() or env_world_size() == 1:
        yield DistContext()
        return
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    dev = _rank_device(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group(backend, timeout=timeout, device_id=dev)
        control = dist.new_group(backend="gloo", timeout=timeout)
    else:
        dist.init_process_group(backend, timeout=timeout)
        control = None  # the default group is already gloo
    ctx = DistContext(rank, world, local_rank, dev, backend, control)
    yield ctx
    dist.destroy_process_group()
