"""The Train page's form: fields generated from the config dataclasses, the chosen data summed up
without its pixels, and validated requests for ``python -m lsx train``.

Everything here validates exactly as the trainer will, before anything is started or written:
:func:`prepare_request` opens the data (``npy:`` and ``folder:`` lazily: listed and checked, not
decoded), builds the model's config and the TrainConfig, and refuses a run folder that already
holds a run. The jobs themselves are :mod:`lsx.app.train_jobs`; the page is
:mod:`lsx.app.train_page`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import streamlit as st

import lsx.data
from lsx.app import forms
from lsx.app.forms import FieldSpec
from lsx.checkpoint import CONFIG_NAME, TRAIN_STATE_NAME
from lsx.config import TrainConfig, config_from_dict
from lsx.data import Dataset
from lsx.data.lazy import ImageSource
from lsx.errors import ConfigError, TrainingError
from lsx.models import MODELS, make_config
from lsx.paths import app_data_path

FOLDER_CHOICE = "folder:"  # the dataset picker's entry for a user's image folder
NPY_CHOICE = "npy:"  # ... and for a user's .npy file of images (memory-mapped, always lazy)
PATH_CHOICES = (FOLDER_CHOICE, NPY_CHOICE)  # choices whose spec is the prefix + a server path
PATH_PROMPTS: Mapping[str, str] = MappingProxyType(
    {
        FOLDER_CHOICE: "Enter the path of your image folder (one subfolder per class).",
        NPY_CHOICE: "Enter the path of your .npy file of images: uint8 (0..255) or float32 in "
        "[0, 1], shape (n, H, W) or (n, C, H, W); labels from NAME.labels.npy beside it.",
    }
)
APP_TRAIN_DEFAULTS: Mapping[str, Any] = MappingProxyType({"snapshots": 1000})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# ------------------------------------------------------------------------------ form fields


def device_choices() -> tuple[str, ...]:
    """``auto`` and ``cpu``, plus ``cuda`` (and ``cuda:N``) only when CUDA is available."""
    import torch

    extra = ()
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        extra = ("cuda", *(f"cuda:{i}" for i in range(1, n)))
    return ("auto", "cpu", *extra)


def data_fields(kind: str, dataset: Dataset | ImageSource | DataSummary) -> dict[str, Any]:
    """Config fields the dataset determines (``input_shape``, and e.g. class counts); anything
    with ``input_shape`` and ``label_names`` will do (a Dataset, an ImageSource, a summary)."""
    try:
        from lsx.models import dataset_fields
    except ImportError:  # a registry without the hook: the input shape only
        return {"input_shape": dataset.input_shape}
    return dataset_fields(kind, dataset)


def model_specs(kind: str, dataset: Dataset | ImageSource | DataSummary) -> tuple[FieldSpec, ...]:
    """Form fields of ``kind``'s config, without those the dataset determines."""
    cls = MODELS[kind].config_cls if kind in MODELS else None
    if cls is None:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODELS)}")
    return forms.field_specs(cls, tuple(sorted(data_fields(kind, dataset))))


def train_specs() -> tuple[FieldSpec, ...]:
    """Form fields of TrainConfig: the device as a picker, the app's defaults applied."""
    out = []
    for spec in forms.field_specs(TrainConfig):
        if spec.name == "device":
            spec = dataclasses.replace(spec, kind="choice", choices=device_choices())
        if spec.name in APP_TRAIN_DEFAULTS:
            value = APP_TRAIN_DEFAULTS[spec.name]
            note = f"  \nThe app's default is {value} (the command line's is {spec.default})."
            spec = dataclasses.replace(spec, default=value, help=spec.help + note)
        out.append(spec)
    return tuple(out)


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class DataSummary:
    """What the form shows and derives from the chosen data, without its pixels."""

    spec: str
    input_shape: tuple[int, int, int]
    label_names: Mapping[str, tuple[str, ...]]
    n_train: int
    n_test: int
    lazy: bool  # the trainer reads it batch by batch (DataLoader workers), not whole
    notes: tuple[str, ...] = ()

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self.label_names.values()))


def open_data(spec: str, image_size: int | None = None) -> Dataset | ImageSource:
    """The data as the form validates it: ``npy:`` and ``folder:`` opened as lazy sources (files
    listed, nothing decoded but a folder's channel sample), built-in datasets loaded (cached).

    Raises
    ------
    ConfigError, DatasetError, DataShapeError
        :func:`lsx.data.open_data`'s message (missing file, pickled or object array, unsupported
        dtype or shape, unreadable folder or file, ...).
    """
    return lsx.data.open_data(spec, image_size, lazy=True)


def is_lazy(data: Dataset | ImageSource) -> bool:
    """Whether ``python -m lsx train`` reads ``data`` lazily: every ``npy:`` file, and folders
    of more than ``lsx.data.LAZY_FOLDER_ABOVE`` images (read when called)."""
    if not isinstance(data, ImageSource):
        return False
    return data.spec.startswith(NPY_CHOICE) or len(data) > lsx.data.LAZY_FOLDER_ABOVE


def summarize(data: Dataset | ImageSource) -> DataSummary:
    """Sizes, shape, classes and notes of ``data`` (a source's split sizes, no pixels read)."""
    if isinstance(data, ImageSource):
        n_train, n_test = len(data.split_indices("train")), len(data.split_indices("test"))
    else:
        n_train, n_test = len(data.x_train), len(data.x_test)
    return DataSummary(
        data.spec, tuple(data.input_shape), dict(data.label_names), n_train, n_test,
        is_lazy(data), tuple(data.notes) if data.spec.startswith(PATH_CHOICES) else (),
    )  # fmt: skip


def _stamp(spec: str) -> tuple:
    """Changes when the file (and its labels file) or the folder's class list changes."""
    from lsx.data import _folder_stamp

    if not spec.startswith(PATH_CHOICES):
        return ()
    path = Path(spec.split(":", 1)[1])
    if spec.startswith(FOLDER_CHOICE):
        return _folder_stamp(path)
    out = []
    for p in (path, path.with_name(path.name.removesuffix(".npy") + ".labels.npy")):
        with contextlib.suppress(OSError):
            out.append((p.name, p.stat().st_mtime_ns, p.stat().st_size))
    return tuple(out)


@st.cache_data(max_entries=16, show_spinner="Reading the dataset …")
def _summary(spec: str, image_size: int | None, stamp: tuple) -> DataSummary:
    return summarize(open_data(spec, image_size))


def data_summary(spec: str, image_size: int | None) -> DataSummary:
    """:func:`summarize` of :func:`open_data`, cached per spec, size and file stamp (a large
    folder is listed once, not on every rerun); errors are not cached."""
    return _summary(spec, image_size, _stamp(spec))


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class TrainRequest:
    """A validated training job: what ``python -m lsx train`` gets.

    ``model_fields`` and ``train_fields`` hold only values that differ from the defaults of the
    config dataclasses (the CLI's defaults are the same).
    """

    root: Path
    name: str
    kind: str = ""
    data: str = ""
    image_size: int | None = None
    model_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resume: bool = False
    class_names: tuple[str, ...] = ()

    @property
    def run_dir(self) -> Path:
        return self.root / self.name

    def argv(self) -> list[str]:
        """The command line, ``sys.executable -m lsx train ... --no-progress``."""
        cmd = [sys.executable, "-m", "lsx", "train", "--out", str(self.root), "--name", self.name]
        cmd.append("--no-progress")
        if self.resume:
            cmd.append("--resume")
        else:
            cmd += ["--model", self.kind, "--data", self.data]
            if self.image_size is not None:
                cmd += ["--image-size", str(self.image_size)]
        for name, value in self.model_fields.items():
            cmd += [f"--{name.replace('_', '-')}", json.dumps(_jsonable(value))]
        for name, value in self.train_fields.items():
            cmd += [f"--{name.replace('_', '-')}", _train_arg(value)]
        return cmd


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _train_arg(value: Any) -> str:
    """How the CLI's TrainConfig options (``type=type(default)``) read a value back."""
    if isinstance(value, bool):
        return "1" if value else ""  # bool("1") is True, bool("") is False
    return str(value)


def default_name(kind: str, data: str) -> str:
    """``<kind>-<data>-<YYYYmmdd-HHMMSS>``, as the CLI names runs; for a folder or a .npy file
    its name (``vae-shirts-...``, ``vae-images-...``), characters a run name refuses as ``-``."""
    if data.startswith(PATH_CHOICES):
        data = data.rstrip("/").rsplit("/", 1)[-1].removesuffix(".npy")
        data = re.sub(r"[^A-Za-z0-9._-]+", "-", data).strip(".-") or "data"
    return f"{kind}-{data.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_name(name: str) -> str:
    """A run-folder name: letters, digits, ``.``, ``_``, ``-``; ConfigError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"The run name must start with a letter or digit and hold only letters, digits, '.', "
            f"'_' and '-' (at most 100 characters); got {name!r}. Leave it empty for an "
            "automatic name."
        )
    return name


class MissingPath(ConfigError):
    """The folder or .npy choice has no path yet (the page prompts for one, not an error)."""


def dataset_spec(choice: str, path: str = "") -> str:
    """The data spec of a picker choice: a built-in name, or ``folder:`` / ``npy:`` with the
    path made absolute (ConfigError asking for it when empty, or when it lies outside the app's
    data roots: :func:`lsx.paths.app_data_path`)."""
    if choice not in PATH_CHOICES:
        return choice
    if not path.strip():
        raise MissingPath(PATH_PROMPTS[choice])
    return choice + str(app_data_path(path))  # inside a data root, links resolved


def prepare_request(
    root: Path,
    name: str,
    kind: str,
    data: str,
    image_size: int | None,
    model_values: Mapping[str, Any],
    train_values: Mapping[str, Any],
) -> TrainRequest:
    """Validate a new run exactly as the trainer will, before anything is started or written.

    Raises
    ------
    ConfigError
        A field the config refuses (its own message), an unknown kind, a bad run name, an
        unavailable device, or a run folder that already holds a run.
    DatasetError, DataShapeError
        The dataset cannot be opened (``npy:`` and ``folder:`` are opened lazily, as lsx.data.lazy
        open_source does: listed and checked, not decoded).
    """
    from lsx.train import resolve_device

    name = check_name(name.strip() or default_name(kind, data))
    image_size = image_size if data.startswith(FOLDER_CHOICE) else None  # npy keeps its size
    dataset = open_data(data, image_size)
    model_values = dict(model_values)
    make_config(kind, **{**data_fields(kind, dataset), **model_values})  # the config's message
    train_cfg = config_from_dict(TrainConfig, dict(train_values))
    resolve_device(train_cfg.device)  # ConfigError when CUDA was asked for but is missing
    specs = {s.name: s for s in forms.field_specs(TrainConfig)}
    train_fields = {k: v for k, v in train_values.items() if k in specs and v != specs[k].default}
    model_fields = forms.non_defaults(model_specs(kind, dataset), model_values)
    if (Path(root) / name / CONFIG_NAME).exists():
        raise ConfigError(
            f"{Path(root) / name} already holds a run; lsx never overwrites one. Choose another "
            "run name, or resume that run below if it is incomplete."
        )
    return TrainRequest(
        Path(root).resolve(), name, kind, data, image_size, model_fields, train_fields,
        class_names=tuple(dataset.class_names),
    )  # fmt: skip


def resume_request(root: Path, name: str, epochs: int | None = None) -> TrainRequest:
    """Continue an incomplete run from its ``train_state.pt`` (optionally to ``epochs``)."""
    run_dir = Path(root) / check_name(name)
    if not (run_dir / TRAIN_STATE_NAME).is_file():
        raise TrainingError(
            f"{run_dir} has no {TRAIN_STATE_NAME} to resume from (it never finished a step, or "
            "it was exported without its training state). Start a new run instead."
        )
    train = {"epochs": int(epochs)} if epochs is not None else {}
    if train:
        config_from_dict(TrainConfig, train)  # the config's message for a bad epoch count
    return TrainRequest(Path(root).resolve(), name, train_fields=train, resume=True)
