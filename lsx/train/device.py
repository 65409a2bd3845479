"""The training device: ``resolve_device``, bf16 autocast of a model's networks, TF32 matmuls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from lsx.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for but CUDA is not available; use 'cpu'.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' was asked for but MPS is not available; use 'cpu'.")
    return torch.device(name)


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
