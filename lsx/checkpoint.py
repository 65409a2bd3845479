"""Run folders: ``config.json`` + ``model.safetensors`` (+ ``metrics.jsonl``, ``status.json``).

Never unpickles a file a user can supply: weights are read with safetensors only, and the
training-state file (resume) is lsx-written and read by torch.load with weights_only=True.
Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a crash or
Ctrl-C leaves the previous file intact (:mod:`lsx.files`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from lsx import __version__
from lsx.config import ModelConfig, config_to_dict
from lsx.errors import CheckpointError, LsxError

# the atomic writers lived here: re-exported under their old names
from lsx.files import append_jsonl as append_jsonl
from lsx.files import atomic_write_bytes as atomic_write_bytes
from lsx.files import atomic_write_json as atomic_write_json
from lsx.files import atomic_write_with as atomic_write_with
from lsx.files import read_jsonl as read_jsonl
from lsx.models import build_model, config_from_json_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
STATUS_NAME = "status.json"
TRAIN_STATE_NAME = "train_state.pt"
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")

# ------------------------------------------------------------------------------ save


def save_checkpoint(
    model: nn.Module,
    config: ModelConfig,
    run_dir: Path,
    *,
    train: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Write ``model.safetensors`` then ``config.json`` into ``run_dir``, each atomically.

    ``train`` is the TrainConfig as a dict; ``data`` describes the dataset (spec, hash, ...).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    cpu_model = model
    if any(p.device.type != "cpu" for p in model.parameters()):
        cpu_model = build_model(config)
        cpu_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    meta = {"kind": config.kind, "format_version": str(FORMAT_VERSION), "lsx_version": __version__}
    atomic_write_with(run_dir / WEIGHTS_NAME, lambda p: save_model(cpu_model, str(p), meta))
    header = {
        "format_version": FORMAT_VERSION,
        "lsx_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "kind": config.kind,
        "config": config_to_dict(config),
        "train": train or {},
        "data": data or {},
    }
    atomic_write_json(run_dir / CONFIG_NAME, header)
    model.train(was_training)


# ------------------------------------------------------------------------------ load


def _refuse_pickles(run_dir: Path) -> None:
    weights = run_dir / WEIGHTS_NAME
    if weights.is_file():
        with open(weights, "rb") as fh:
            head = fh.read(9)
        # A safetensors file is an 8-byte header length, then JSON: "{" at offset 8. Its length
        # bytes can start with 0x80 (a header of 640-1408 bytes), so never call that a pickle.
        safetensors_like = head[8:9] == b"{"
        if not safetensors_like and (head[:2] == b"PK" or head[:1] == b"\x80"):  # zip / pickle
            raise CheckpointError(
                f"{weights} is a pickle or torch.save archive, not a safetensors file. lsx never "
                "unpickles checkpoint files (they can run code). Re-export the weights with "
                "safetensors.torch.save_model, or retrain with `python -m lsx train`."
            )
        return
    pickles = sorted(p.name for p in run_dir.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    pickles = [p for p in pickles if p != TRAIN_STATE_NAME]
    if pickles:
        raise CheckpointError(
            f"{run_dir} holds {', '.join(pickles)} but no {WEIGHTS_NAME}. lsx never unpickles "
            "checkpoint files (they can run code); it reads config.json + model.safetensors only."
        )


def read_header(run_dir: Path) -> dict[str, Any]:
    """Parse and check ``config.json`` (files present, valid JSON, known format version)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a folder; pick a run folder under checkpoints/.")
    _refuse_pickles(run_dir)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (run_dir / name).is_file():
            raise CheckpointError(
                f"{run_dir} has no {name}. A checkpoint folder holds {CONFIG_NAME} and "
                f"{WEIGHTS_NAME}, as written by lsx.checkpoint.save_checkpoint."
            )
    path = run_dir / CONFIG_NAME
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); restore it or retrain.") from err
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} must hold a JSON object; got {type(header).__name__}.")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {header.get('format_version')!r}; this lsx "
            f"({__version__}) reads {FORMAT_VERSION}. It was written by lsx "
            f"{header.get('lsx_version', '(unknown)')}; use that version or retrain."
        )
    return header


def read_config(run_dir: Path) -> ModelConfig:
    header = read_header(run_dir)
    try:
        return config_from_json_dict(header.get("config", {}))
    except LsxError as err:
        raise CheckpointError(f"{Path(run_dir) / CONFIG_NAME}: {err}") from err


def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from the safetensors header, without reading the data."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except Exception as err:  # SafetensorError, OSError: corrupt or not safetensors at all
        raise CheckpointError(
            f"{path} is corrupt or not a safetensors file ({err}). Restore it from a backup or "
            "retrain the run."
        ) from err


def check_shapes(model: nn.Module, config: ModelConfig, weights: Path) -> None:
    """Compare the model's expected tensor shapes with the file's; explain any difference."""
    found = _weight_shapes(weights)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [k for k in sorted(expected) if k in found and found[k] != expected[k]]
    if not (missing or unexpected or wrong):
        return
    lines = [f"  {k}: file has {found[k]}, config needs {expected[k]}" for k in wrong[:5]]
    if missing:
        lines.append(f"  missing in file: {', '.join(missing[:5])}")
    if unexpected:
        lines.append(f"  not expected: {', '.join(unexpected[:5])}")
    raise CheckpointError(
        f"{weights} does not fit the model that {CONFIG_NAME} describes (kind={config.kind!r}, "
        f"input_shape={config.input_shape}, latent_dim={config.latent_dim}, hidden_dim="
        f"{config.hidden_dim}, arch={config.arch!r}, spatial={config.spatial}); were the two "
        "files copied from different runs, or was config.json edited?\n" + "\n".join(lines)
    )


def load_checkpoint(run_dir: Path, device: str = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Build the model that ``config.json`` describes and load its weights, in eval mode.

    Raises
    ------
    CheckpointError
        Missing files, a pickle, invalid JSON, unknown format version, a config of an unknown
        kind or with bad fields, corrupt weights, or weights of other shapes.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model = build_model(config)
    weights = run_dir / WEIGHTS_NAME
    check_shapes(model, config, weights)
    try:
        load_model(model, str(weights), strict=True, device=device)
    except Exception as err:  # SafetensorError or RuntimeError
        raise CheckpointError(f"{weights} could not be loaded: {err}") from err
    return model.to(device).eval(), config


def weights_sha256(run_dir: Path) -> str:
    """sha256 of ``model.safetensors`` (first 16 hex digits): the cache key of a run's weights."""
    path = Path(run_dir) / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no {WEIGHTS_NAME}; pick another run or retrain.")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------ listing runs


@dataclass(frozen=True)
class RunInfo:
    """What the app's picker and model card show about a valid run."""

    run_dir: Path
    name: str
    kind: str
    config: ModelConfig
    header: dict[str, Any]
    final_metrics: dict[str, Any]
    status: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.header.get("data", {}).get("spec", "?"))


def read_status(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        status = {"state": "unknown", "message": f"{STATUS_NAME} is unreadable"}
    return status if isinstance(status, dict) else {}


def inspect_run(run_dir: Path) -> RunInfo:
    """Validate a run without loading weight data (header shapes only)."""
    run_dir = Path(run_dir)
    header = read_header(run_dir)
    config = read_config(run_dir)
    check_shapes(build_model(config), config, run_dir / WEIGHTS_NAME)
    metrics = read_jsonl(run_dir / METRICS_NAME)
    return RunInfo(
        run_dir,
        run_dir.name,
        config.kind,
        config,
        header,
        metrics[-1] if metrics else {},
        read_status(run_dir),
    )


INCOMPLETE_STATES = ("running", "stopped", "failed")  # status.json states of unfinished runs


def incomplete_reason(run_dir: Path, status: dict[str, Any]) -> str | None:
    """Why a run whose ``status.json`` says it is unfinished is not a valid checkpoint.

    Parameters
    ----------
    run_dir : Path
    status : dict
        Its ``status.json`` (:func:`read_status`).

    Returns
    -------
    str or None
        ``"incomplete: stopped at epoch 3/20 (resume with python -m lsx train --name X
        --resume)"``; None for a completed or early-stopped run, or one without a status (written
        by :func:`save_checkpoint` alone).
    """
    state = status.get("state")
    if state not in INCOMPLETE_STATES:
        return None
    run_dir = Path(run_dir)
    where = f"at epoch {status.get('epoch', '?')}/{status.get('epochs', '?')}"
    default_root = Path(__file__).resolve().parents[1] / "checkpoints"
    out = "" if run_dir.parent.resolve() == default_root else f" --out {run_dir.parent}"
    resume = f"python -m lsx train{out} --name {run_dir.name} --resume"
    if state == "stopped":
        return f"incomplete: stopped {where} (resume with {resume})"
    if state == "failed":
        message = str(status.get("message", "")).splitlines()[0:1]
        why = f": {message[0]}" if message else ""
        return f"incomplete: training failed {where}{why} (fix the cause, then {resume})"
    return (
        f"incomplete: still training, or interrupted, {where} (if no trainer is running, resume "
        f"with {resume})"
    )


def list_runs(root: Path) -> tuple[list[RunInfo], list[tuple[str, str]]]:
    """Valid runs under ``root`` (sorted by name) and ``(name, reason)`` for each skipped entry.

    A run whose ``status.json`` says it is running, stopped or failed is skipped as incomplete
    (:func:`incomplete_reason`): its weights load, but training did not finish.
    """
    root = Path(root)
    runs: list[RunInfo] = []
    skipped: list[tuple[str, str]] = []
    if not root.is_dir():
        return runs, skipped
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in ("README.md",):
            continue
        if not entry.is_dir():
            skipped.append((entry.name, "not a run folder (a file)"))
            continue
        try:
            info = inspect_run(entry)
        except LsxError as err:
            skipped.append((entry.name, str(err).splitlines()[0]))
            continue
        reason = incomplete_reason(entry, info.status)
        if reason is None:
            runs.append(info)
        else:
            skipped.append((entry.name, reason))
    return runs, skipped
