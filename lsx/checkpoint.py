"""Run folders: ``config.json`` + ``model.safetensors`` (+ ``metrics.jsonl``, ``status.json``).

Never unpickles a file a user can supply: weights are read with safetensors only, and the
training-state file (resume) is lsx-written and read by torch.load with weights_only=True.
Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a crash or
Ctrl-C leaves the previous file intact (:mod:`lsx.files`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from lsx.config import ModelConfig, config_to_dict
from lsx.data import MAX_IMAGE_SIZE
from lsx.errors import CheckpointError, LsxError

# the atomic writers lived here: re-exported under their old names
from lsx.files import append_jsonl as append_jsonl
from lsx.files import atomic_write_bytes as atomic_write_bytes
from lsx.files import atomic_write_json as atomic_write_json
from lsx.files import atomic_write_with as atomic_write_with
from lsx.files import open_regular, read_json_capped
from lsx.files import read_jsonl as read_jsonl
from lsx.models import MODELS, PLUGIN_PROBLEMS, PLUGINS, build_model, config_from_json_dict
from lsx.models.plugins import missing_kind_reason
from lsx.version import __version__
from lsx.weights_file import MAX_HEADER_BYTES as MAX_HEADER_BYTES
from lsx.weights_file import (
    MAX_PARAMETERS,
    MAX_WEIGHTS_BYTES,
    looks_like_pickle,
    nonfinite_note,
    read_weights_header,
)
from lsx.weights_file import short as _short

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
STATUS_NAME = "status.json"
# an embedding set (lsx.embeddings: latents without a model) lives beside the runs; not a run
EMBEDDING_SET_FILE = "embeddings.json"
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
    plugin = PLUGINS.get(config.kind)
    if plugin is not None:  # what a listing without the package tells the user to install
        header["plugin"] = {"package": plugin.package, "version": plugin.version}
    atomic_write_json(run_dir / CONFIG_NAME, header)
    model.train(was_training)


# ------------------------------------------------------------------------------ limits
# What a run folder may make lsx read or build. A folder is untrusted input: copied from
# elsewhere, edited, or crafted; every cap below is checked before the thing is read or built.
MAX_CONFIG_BYTES = 16_000_000  # config.json is ~1.5 KB; a sae run stores its user centres file
# (<= 5 MB, lsx.models.centres) in it, indented: under 10 MB. A 200 MB config is refused unread.
MAX_STATUS_BYTES = 1_000_000  # status.json is < 1 KB; a failure message with traceback a few KB
MAX_METRICS_TAIL_BYTES = 64_000  # listing reads the last record of metrics.jsonl (< 1 KB a line)
NAN_CHECK_MAX_BYTES = 50_000_000  # listing reads weights to look for NaN/Inf only below this
MAX_REASON_CHARS = 300  # a skipped run's reason, as listed
RUN_CACHE_SIZE = 128  # inspected runs remembered per process, keyed by their files' stat


# ------------------------------------------------------------------------------ load


def _refuse_pickles(run_dir: Path) -> None:
    weights = run_dir / WEIGHTS_NAME
    if weights.exists():
        fd = open_regular(weights, CheckpointError, WEIGHTS_NAME)
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, 9, 0)
            last = os.pread(fd, 1, size - 1) if size else b""
        finally:
            os.close(fd)
        if looks_like_pickle(head, size, last):
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
    """Parse and check ``config.json`` (files present, capped, valid JSON, known format)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a folder; pick a run folder under checkpoints/.")
    _refuse_pickles(run_dir)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (run_dir / name).exists():
            raise CheckpointError(
                f"{run_dir} has no {name}. A checkpoint folder holds {CONFIG_NAME} and "
                f"{WEIGHTS_NAME}, as written by lsx.checkpoint.save_checkpoint."
            )
    path = run_dir / CONFIG_NAME
    header = read_json_capped(path, MAX_CONFIG_BYTES, CONFIG_NAME, CheckpointError)
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} must hold a JSON object; got {type(header).__name__}.")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {_short(repr(header.get('format_version')))}; this lsx "
            f"({__version__}) reads {FORMAT_VERSION}. It was written by lsx "
            f"{str(header.get('lsx_version', '(unknown)'))[:40]}; use that version or retrain."
        )
    for key in ("config", "train", "data"):
        if not isinstance(header.get(key, {}), dict):
            raise CheckpointError(
                f"{path}: {key!r} must be a JSON object; got {type(header[key]).__name__}. "
                "Restore the config.json that lsx wrote, or retrain."
            )
    return header


def _config_from_header(header: dict[str, Any], path: Path) -> ModelConfig:
    kind = (header.get("config") or {}).get("kind")
    if isinstance(kind, str) and kind not in MODELS:  # a plugin kind whose package is absent
        reason = missing_kind_reason(kind, header.get("plugin"), PLUGIN_PROBLEMS, MODELS)
        raise CheckpointError(f"{path}: {reason}")
    try:
        return config_from_json_dict(header.get("config", {}))
    except LsxError as err:
        raise CheckpointError(f"{path}: {err}") from err
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as err:
        raise CheckpointError(
            f"{path}: its 'config' object is malformed ({type(err).__name__}: "
            f"{_short(str(err), 200)}). Restore the config.json that lsx wrote, or retrain."
        ) from err


def read_config(run_dir: Path) -> ModelConfig:
    return _config_from_header(read_header(run_dir), Path(run_dir) / CONFIG_NAME)


def expected_shapes(config: ModelConfig, where: Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of the model ``config`` describes, refused if beyond the limits.

    The model is built on torch's ``meta`` device (the ``torch.device`` context manager is
    thread-local): modules and shapes, no memory for weights, a few ms. Checked first: the input
    size against :data:`lsx.data.MAX_IMAGE_SIZE`; then the parameter count against
    :data:`MAX_PARAMETERS`.

    Raises
    ------
    CheckpointError
        An input larger than MAX_IMAGE_SIZE, more than MAX_PARAMETERS parameters, or a config
        from which no model can be built.
    """
    _, height, width = config.input_shape
    if max(height, width) > MAX_IMAGE_SIZE:
        raise CheckpointError(
            f"{where}: input_shape {config.input_shape} is larger than lsx's limit of "
            f"{MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE} pixels, so the model is not built. Was "
            f"{CONFIG_NAME} edited? Restore it, or retrain at image_size <= {MAX_IMAGE_SIZE}."
        )
    try:
        with torch.device("meta"):
            model = build_model(config)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    except LsxError as err:
        raise CheckpointError(f"{where}: {err}") from err
    except Exception as err:  # a field combination the model code cannot build
        raise CheckpointError(
            f"{where}: no model can be built from this config ({type(err).__name__}: "
            f"{_short(str(err), 200)}). Restore the {CONFIG_NAME} that lsx wrote, or retrain."
        ) from err
    n = sum(math.prod(s) for s in shapes.values())
    if n > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: the config describes a model of {n:,} parameters ({n * 4 / 2**30:.1f} GiB "
            f"as float32); lsx builds at most {MAX_PARAMETERS:,} ({MAX_WEIGHTS_BYTES / 2**30:.0f} "
            f"GiB), so it is not built. Was {CONFIG_NAME} edited? Use smaller hidden_dim, "
            "latent_dim or input size."
        )
    return shapes


def _compare_shapes(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    config: ModelConfig,
    weights: Path,
) -> None:
    """Explain any difference between the config's tensor shapes and the file's."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [k for k in sorted(expected) if k in found and found[k] != expected[k]]
    if not (missing or unexpected or wrong):
        return
    lines = [f"  {k}: file has {found[k]}, config needs {expected[k]}" for k in wrong[:5]]
    if missing:
        lines.append(f"  missing in file: {', '.join(missing[:5])}")
    if unexpected:
        lines.append(f"  not expected: {', '.join(_short(k, 60) for k in unexpected[:5])}")
    raise CheckpointError(
        f"{weights} does not fit the model that {CONFIG_NAME} describes (kind={config.kind!r}, "
        f"input_shape={config.input_shape}, latent_dim={config.latent_dim}, hidden_dim="
        f"{config.hidden_dim}, arch={config.arch!r}, spatial={config.spatial}); were the two "
        "files copied from different runs, or was config.json edited?\n" + "\n".join(lines)
    )


def load_checkpoint(run_dir: Path, device: str = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Build the model that ``config.json`` describes and load its weights, in eval mode.

    Everything is checked before the model is built: capped ``config.json``, the safetensors
    header, the input size and parameter count (:func:`expected_shapes`), the shapes.

    Raises
    ------
    CheckpointError
        Missing files, a pickle, invalid or oversized JSON, unknown format version, a config of
        an unknown kind, with bad fields or beyond the limits, corrupt weights, or weights of
        other shapes.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    weights = run_dir / WEIGHTS_NAME
    found = read_weights_header(weights)
    _compare_shapes(expected_shapes(config, run_dir / CONFIG_NAME), found.shapes, config, weights)
    model = build_model(config)
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
    """What the app's picker and model card show about a valid run.

    Listing results are shared (cached per process): treat the dicts as read-only.
    """

    run_dir: Path
    name: str
    kind: str
    config: ModelConfig
    header: dict[str, Any]
    final_metrics: dict[str, Any]
    status: dict[str, Any]
    notes: tuple[str, ...] = ()  # what listing could not check, e.g. NaN in large weights

    @property
    def dataset(self) -> str:
        return str(self.header.get("data", {}).get("spec", "?"))


def read_status(run_dir: Path) -> dict[str, Any]:
    """``status.json`` as a dict; {} when absent, ``state: unknown`` when unreadable."""
    path = Path(run_dir) / STATUS_NAME
    if not os.path.lexists(path):
        return {}
    try:
        status = read_json_capped(path, MAX_STATUS_BYTES, STATUS_NAME, CheckpointError)
    except LsxError as err:  # too large, not a regular file, not JSON
        why = _short(str(err).split(" (")[0], 200)
        return {"state": "unknown", "message": f"{STATUS_NAME} is unreadable: {why}"}
    return status if isinstance(status, dict) else {}


def _inspect(run_dir: Path) -> RunInfo:
    """Validate a run without building it: header, limits, shapes on the meta device, NaN."""
    header = read_header(run_dir)
    config = _config_from_header(header, run_dir / CONFIG_NAME)
    weights = run_dir / WEIGHTS_NAME
    found = read_weights_header(weights)
    _compare_shapes(expected_shapes(config, run_dir / CONFIG_NAME), found.shapes, config, weights)
    notes = nonfinite_note(weights, found, NAN_CHECK_MAX_BYTES)
    try:  # the last record only: listing never reads a whole long metrics file
        metrics = read_jsonl(run_dir / METRICS_NAME, max_bytes=MAX_METRICS_TAIL_BYTES)
    except LsxError as err:
        metrics, notes = [], (*notes, f"{METRICS_NAME} unreadable: {_short(str(err), 120)}")
    status = read_status(run_dir)
    return RunInfo(
        run_dir,
        run_dir.name,
        config.kind,
        config,
        header,
        metrics[-1] if metrics else {},
        status,
        notes,
    )


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=RUN_CACHE_SIZE)
def _inspect_cached(run_dir: str, key: tuple[Any, ...]) -> RunInfo | str:
    """:func:`_inspect` or the reason it failed, remembered for this ``key`` (files' stat)."""
    del key  # only part of the cache key: any change to the run's files means "inspect again"
    try:
        return _inspect(Path(run_dir))
    except LsxError as err:
        return str(err)
    except Exception as err:  # anything a bad folder can trigger; never breaks the listing
        return f"{run_dir} could not be inspected ({type(err).__name__}: {_short(str(err), 200)})"


def inspect_run(run_dir: Path) -> RunInfo:
    """Validate a run without building the model or loading more than a small weights file.

    Checks ``config.json`` (capped), the safetensors header (capped, offsets), the input size
    and parameter count (:func:`expected_shapes`), the shapes, and NaN/Inf in weights under
    :data:`NAN_CHECK_MAX_BYTES`. Results are cached per process, keyed by the modification
    time, size and inode of the folder and its run files, so listing again costs a few ``stat``
    calls until a file changes.

    Raises
    ------
    CheckpointError
        Why the folder is not a valid run (the same message on every call until it changes).
    """
    run_dir = Path(os.path.abspath(run_dir))
    names = ("", CONFIG_NAME, WEIGHTS_NAME, STATUS_NAME, METRICS_NAME)
    # the installed kinds too: a plugin (un)installed changes whether the run's kind builds
    key = (*(_stat_key(run_dir / n) for n in names), tuple(MODELS))
    result = _inspect_cached(str(run_dir), key)
    if isinstance(result, str):
        raise CheckpointError(result)
    return result


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
    (:func:`incomplete_reason`): its weights load, but training did not finish. A run folder
    that is a symbolic link is listed only if it resolves inside ``root`` (an alias of another
    run); a link out of ``root`` is skipped (:func:`_outside_reason`): the runs folder is the one
    place the app reads runs from.
    """
    root = Path(root)
    runs: list[RunInfo] = []
    skipped: list[tuple[str, str]] = []
    if not root.is_dir():
        return runs, skipped
    try:
        entries = sorted(root.iterdir())
    except OSError as err:
        return runs, [(root.name, f"cannot list the folder ({err.strerror or err})")]
    real_root = os.path.realpath(root)
    for entry in entries:
        if entry.name.startswith(".") or entry.name in ("README.md",):
            continue
        try:  # one bad folder is skipped with its reason, whatever it raises
            if entry.is_symlink() and not Path(os.path.realpath(entry)).is_relative_to(real_root):
                skipped.append((entry.name, _outside_reason(entry.name, root)))
                continue
            if not entry.is_dir():
                skipped.append((entry.name, "not a run folder (a file)"))
                continue
            if (entry / EMBEDDING_SET_FILE).is_file():  # listed by lsx.embeddings instead
                continue
            info = inspect_run(entry)
            reason = incomplete_reason(entry, info.status)
        except Exception as err:
            skipped.append((entry.name, _skip_reason(err)))
            continue
        if reason is None:
            runs.append(info)
        else:
            skipped.append((entry.name, reason))
    return runs, skipped


def _outside_reason(name: str, root: Path) -> str:
    """Why a link out of the runs folder is skipped (its target is not shown)."""
    return (
        f"{name} is a link to a folder outside {root}; copy the run into the folder, or point "
        "LSX_CHECKPOINTS (or --out) at the folder it lives in"
    )


def _skip_reason(err: Exception) -> str:
    """The first line of an lsx error; the type and first line of anything else; truncated."""
    first = (str(err).splitlines() or [""])[0]
    text = first if isinstance(err, LsxError) else f"{type(err).__name__}: {first}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
