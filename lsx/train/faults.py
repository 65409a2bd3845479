"""What a training fault leaves behind, in words: changed settings on ``--resume``, a full disk,
and which checkpoint a failed run still holds.

Resume rules (:func:`resume_changes`). ``--resume`` continues from ``train_state.pt``; every
TrainConfig field that the trainer reads afresh (epochs, patience, grad_clip, device, ...) takes
its new value, and the optimiser settings that live inside the restored optimiser (``lr``,
``weight_decay``) are written into its parameter groups, so the value ``config.json`` records is
always the one in use. Refused, with the field, the recorded value and the new one: ``seed`` (the
restored random state continues the recorded stream, so a new seed would be recorded but not
used), ``batch_size`` in the middle of an epoch (the saved position counts batches of the old
size) and fewer ``epochs`` than the run has done.
"""

from __future__ import annotations

import errno
import gc
import resource
import shutil
import traceback
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from lsx.config import TrainConfig
from lsx.errors import ConfigError

OPTIMISER_FIELDS = ("lr", "weight_decay")  # held by the restored optimiser's param groups
NEVER_CHANGES = ("seed",)  # the restored RNG state continues the recorded stream
AT_EPOCH_BOUNDARY = ("batch_size",)  # the saved position counts batches of this size
# what a full disk or a file-size limit looks like when the errno is lost on the way (torch's zip
# writer: "unexpected pos"; safetensors: "os error 28"); lsx.app.train_jobs.DISK_FULL_SIGNS
# recognises the same in a log
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_SIGNS = ("No space left", "os error 28", "Disk quota exceeded", "os error 122")
LIMIT_SIGNS = ("File too large", "os error 27")
UNCLEAR_SIGNS = ("unexpected pos",)


def resume_changes(
    before: dict[str, Any], after: TrainConfig, state: dict[str, Any]
) -> dict[str, list[Any]]:
    """The TrainConfig fields that differ between the saved run and ``after``.

    Parameters
    ----------
    before : dict
        The TrainConfig the run was saved with (``asdict``); a missing field had its default.
    after : TrainConfig
        The settings of this ``--resume``.
    state : dict
        The saved training state (``epoch``: epochs done; ``step_in_epoch`` > 0 when it was
        saved inside an epoch, by a stop signal).

    Returns
    -------
    dict
        ``{field: [recorded value, new value]}`` for every changed field, in field order.

    Raises
    ------
    ConfigError
        A change that resume cannot honour (see the module docstring); the message names the
        field, both values and what to do.
    """
    new = asdict(after)
    epochs_done, mid_epoch = int(state["epoch"]), int(state["step_in_epoch"]) > 0
    changes: dict[str, list[Any]] = {}
    for f in fields(TrainConfig):
        old = before.get(f.name, f.default)
        if old != new[f.name]:
            changes[f.name] = [old, new[f.name]]
    flag = {name: f"--{name.replace('_', '-')}" for name in changes}
    for name in NEVER_CHANGES:
        if name in changes:
            old, value = changes[name]
            raise ConfigError(
                f"{flag[name]} {value!r} cannot change on --resume: the run was trained with "
                f"{name}={old!r}, and the restored random state continues that stream, so the "
                f"new value would be recorded but not used. Drop {flag[name]}, or start a new "
                "run (another --name) with it."
            )
    for name in AT_EPOCH_BOUNDARY:
        if name in changes and mid_epoch:
            old, value = changes[name]
            raise ConfigError(
                f"{flag[name]} {value!r} cannot change in the middle of an epoch: the run "
                f"stopped inside epoch {epochs_done + 1} with {name}={old!r}, and its saved "
                f"position counts batches of that size. Resume with {name}={old!r} (drop "
                f"{flag[name]}); it can change once the run is stopped at an epoch's end."
            )
    if "epochs" in changes and after.epochs < epochs_done:
        raise ConfigError(
            f"--epochs {after.epochs} is fewer than the {epochs_done} epochs this run has "
            f"already done (it was set to {changes['epochs'][0]}). Pass --epochs "
            f"{epochs_done + 1} or more to train further, or drop --epochs."
        )
    return changes


def describe_changes(changes: dict[str, list[Any]]) -> str:
    """``"lr 0.001 -> 0.01, epochs 2 -> 4"``."""
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())


def free_mb(folder: Path) -> float | None:
    """Free space (MB) of the file system that holds ``folder`` (or its nearest parent)."""
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free / 1e6
    except OSError:
        return None


def _file_size_limit() -> int | None:
    """This process's file-size limit in bytes (``ulimit -f``), None when unlimited."""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _chain(err: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = err
    while seen is not None and seen not in out and len(out) < 20:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def write_failure(err: BaseException, folder: Path) -> tuple[str, str] | None:
    """``(what happened, what to fix)`` if ``err`` is a write that failed for lack of space.

    Recognises ``OSError`` ENOSPC / EDQUOT (disk full, quota) and EFBIG (a file-size limit, as
    ``ulimit -f`` sets), anywhere in the exception chain, and the texts that torch's and
    safetensors' writers raise instead (:data:`FULL_SIGNS`, :data:`LIMIT_SIGNS`,
    :data:`UNCLEAR_SIGNS`; torch's "unexpected pos" loses the errno, so the free space and the
    process's file-size limit decide). The message names the free space at ``folder``, measured
    after the failed writer's frames are cleared: torch's zip writer keeps its (already
    unlinked) temporary file open until it is collected, and that space is what status.json
    needs next. None for any other error.
    """
    chain = _chain(err)
    codes = {e.errno for e in chain if isinstance(e, OSError)}
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if not (codes & {*DISK_FULL_ERRNOS, errno.EFBIG}) and not any(
        s in text for s in (*FULL_SIGNS, *LIMIT_SIGNS, *UNCLEAR_SIGNS)
    ):
        return None
    for e in chain:  # close the writer that failed: its open file still holds the space
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
    gc.collect()
    free = free_mb(folder)
    where = f"{free:.1f} MB free at {folder}" if free is not None else f"at {folder}"
    failed = f"writing the run's files failed ({type(err).__name__}: {_first_line(err)})"
    full = (f"The disk is full ({where}); {failed}.", "Free some space")
    limit = _file_size_limit()
    if codes & set(DISK_FULL_ERRNOS) or any(s in text for s in FULL_SIGNS):
        return full
    too_large = errno.EFBIG in codes or any(s in text for s in LIMIT_SIGNS)
    if limit is None and too_large:  # no ulimit -f: the file system's largest file
        return (
            f"A file grew past the largest size the file system allows ({where}); {failed}.",
            "Write the run to another file system (--out)",
        )
    if limit is None:  # torch's "unexpected pos" and no ulimit -f: the disk
        return full
    if free is not None and free * 1e6 > limit:  # room for a file as large as the limit
        return (
            f"A file reached the file-size limit of this process (ulimit -f: {limit:,} bytes; "
            f"{where}); {failed}.",
            "Raise the limit (ulimit -f unlimited)",
        )
    return (
        f"The disk is full, or the file-size limit (ulimit -f: {limit:,} bytes) stopped the "
        f"write ({where}); {failed}.",
        "Free some space or raise the limit",
    )


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [""])[0][:160]


def saved_note(
    run_dir: Path | None,
    saved: tuple[int, int] | None,
    state_saved: tuple[int, int] | None,
    started_at: tuple[int, int],
) -> str:
    """What the run folder holds after a failure, in one or two sentences.

    Parameters
    ----------
    run_dir : Path or None
        None when training in memory.
    saved : (epoch, global_step) or None
        Position of the last complete checkpoint (train_state.pt, model.safetensors and
        config.json all written), or None.
    state_saved : (epoch, global_step) or None
        Position of the last ``train_state.pt`` written (newer than ``saved`` when the weights
        that followed it failed).
    started_at : (epoch, global_step)
        Where this fit started (0, 0 for a new run; the resume position otherwise).
    """
    if run_dir is None:
        return "Nothing was saved (training in memory, no run folder)."
    if saved is None and state_saved is None:
        return f"No checkpoint was written to {run_dir}: there is nothing to resume from."
    if saved is None:
        epoch, step = state_saved  # type: ignore[misc]
        return (
            f"{run_dir} holds train_state.pt of epoch {epoch} (step {step}) but no complete "
            "model.safetensors and config.json yet."
        )
    epoch, step = saved
    if saved == (0, 0):
        what = "the checkpoint written when training started (the initial weights, step 0)"
    elif saved == started_at:
        what = f"the checkpoint of epoch {epoch}, step {step}, where this run resumed"
    else:
        what = f"the checkpoint of epoch {epoch} (step {step})"
    note = f"{run_dir} keeps {what}."
    if state_saved is not None and state_saved != saved:
        note += (
            f" Its train_state.pt is newer (epoch {state_saved[0]}, step {state_saved[1]}): "
            "--resume continues from there."
        )
    return note


def resume_command(run_dir: Path) -> str:
    """``python -m lsx train --out OUT --name NAME --resume``."""
    return f"python -m lsx train --out {run_dir.parent} --name {run_dir.name} --resume"


def nonfinite_message(
    config: TrainConfig, step: int, lr: float, last: float, note: str, resume: str | None
) -> str:
    """Why training stopped after non-finite steps, what the run folder keeps (``note``, from
    :func:`saved_note`) and what to do (``resume``: the resume command, when there is a
    checkpoint)."""
    advice = "Lower --lr, check the data for extreme values, or reduce --beta."
    if resume is not None:
        advice = (
            f"Resume from it with new settings, e.g. {resume} --lr {config.lr / 10:g}; or check "
            "the data for extreme values, or reduce --beta."
        )
    return (
        f"Training stopped: the loss or its gradient was NaN/Inf for {config.max_bad_steps} "
        f"steps in a row at step {step} (lr={lr:g}), even after rolling back and halving the "
        f"learning rate. Last finite loss: {last:.6g}. {note} {advice}"
    )
