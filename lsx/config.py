"""Frozen config dataclasses, their validation helpers and their JSON round trip.

Every model kind has a ``@dataclass(frozen=True)`` config in its own module that subclasses
:class:`ModelConfig`. A field's help and rule (bounds, choices) are declared once with
:func:`option`, as field metadata that both :func:`check_fields` (called by ``__post_init__``)
and the app's forms read; rules across fields stay in ``__post_init__``. Configs are saved as
sorted JSON beside the weights (``config.json``); an unknown key is a
:class:`~lsx.errors.ConfigError` that names the closest field.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from lsx.errors import ConfigError

# --------------------------------------------------------------------------- validation helpers


def _fail(obj: object, name: str, rule: str, value: object) -> None:
    raise ConfigError(
        f"The {name!r} field of {type(obj).__name__} must be {rule}. Got {value!r} instead."
    )


def check_int(
    obj: object,
    name: str,
    low: int | None = None,
    high: int | None = None,
    low_is: str | None = None,
) -> None:
    """Raise ConfigError unless ``obj.<name>`` is an int in ``[low, high]``."""
    value = getattr(obj, name)
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        rule = "an int"
        if low is not None:
            rule += f" >= {low}" + (f" ({low_is})" if low_is else "")
        if high is not None:
            rule += f"{' and' if low is not None else ''} <= {high}"
        _fail(obj, name, rule, value)


def check_float(
    obj: object,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    """Raise ConfigError unless ``obj.<name>`` is a finite number in the given range."""
    value = getattr(obj, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    ok = ok and abs(value) != float("inf")
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        rule = "a finite number"
        if low is not None:
            rule += f" {'>' if low_open else '>='} {low}"
        if high is not None:
            rule += f" and <= {high}"
        _fail(obj, name, rule, value)


def check_choice(obj: object, name: str, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``obj.<name>`` is one of ``choices``."""
    value = getattr(obj, name)
    if value not in choices:
        _fail(obj, name, "one of " + ", ".join(repr(c) for c in choices), value)


def check_bool(obj: object, name: str) -> None:
    """Raise ConfigError unless ``obj.<name>`` is True or False."""
    value = getattr(obj, name)
    if not isinstance(value, bool):
        _fail(obj, name, "true or false", value)


# --------------------------------------------------------------------------- declared bounds

Bound = float | str | Callable[[], float] | None
"""A bound in field metadata: a number; the name of another field of the same config (its value
is the bound, e.g. ``low="latent_dim"``); or a function of no arguments that returns it (a
constant of a module the config must not import at load time)."""


def option(
    default: Any,
    help: str = "",
    *,
    low: Bound = None,
    high: Bound = None,
    low_open: bool = False,
    low_is: str | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A config field with its help and the rule :func:`check_fields` enforces, declared once.

    The rule lives in the field's metadata, where both the config's validation and the app's
    forms (``lsx.app.forms``) read it. An int or float field is checked against ``low`` and
    ``high``, a field with ``choices`` against them, a bool field for being a bool.

    Parameters
    ----------
    default : Any
        The field's default (immutable: configs are frozen).
    help : str
        One line for the form and the docs.
    low, high : number, str or callable, optional
        Inclusive bounds (``low`` is exclusive with ``low_open=True``); see :data:`Bound`.
    low_is : str, optional
        Why the lower bound is what it is, shown in the error ("an int >= 2 (an atom needs ...)").
    choices : tuple, optional
        The allowed values of a str field.

    Returns
    -------
    dataclasses.Field
    """
    rule: dict[str, Any] = {"low": low, "high": high, "low_is": low_is, "choices": choices}
    metadata = {"help": help, **{k: v for k, v in rule.items() if v is not None}}
    if low_open:
        metadata["low_open"] = True
    return dataclasses.field(default=default, metadata=metadata)


def bound_value(obj: object, bound: Bound) -> float | None:
    """The number a declared bound stands for on ``obj`` (a field name is read from ``obj``);
    None when there is none, or when the named field holds no number (its own check says so)."""
    if isinstance(bound, str):
        bound = getattr(obj, bound)
    elif callable(bound):
        bound = bound()
    is_number = isinstance(bound, int | float) and not isinstance(bound, bool)
    return bound if is_number else None  # type: ignore[return-value]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(obj: object) -> None:
    """Check every field of the dataclass ``obj`` against its type and declared rule.

    In declaration order: a field with ``choices`` must be one of them; an int, float or bool
    field must be one (in ``[low, high]`` when declared, see :func:`option`). Other fields
    (tuples, free text) are left to the config's own ``__post_init__``.

    Raises
    ------
    ConfigError
        The first field that breaks its rule, with the rule and the value received.
    """
    hints = _hints(type(obj))
    for f in fields(obj):  # type: ignore[arg-type]
        meta, hint = f.metadata, hints.get(f.name)
        if meta.get("choices") is not None:
            check_choice(obj, f.name, tuple(meta["choices"]))
        elif hint is bool:
            check_bool(obj, f.name)
        elif hint is int or hint is float:
            low = bound_value(obj, meta.get("low"))
            high = bound_value(obj, meta.get("high"))
            if hint is int:
                low_is = meta.get("low_is") or (
                    meta["low"] if isinstance(meta.get("low"), str) else None
                )
                check_int(obj, f.name, low=low, high=high, low_is=low_is)  # type: ignore[arg-type]
            else:
                check_float(obj, f.name, low=low, high=high, low_open=bool(meta.get("low_open")))


# --------------------------------------------------------------------------- JSON round trip


def _coerce(value: Any, annotation: Any) -> Any:
    """JSON gives lists where configs hold tuples; turn them back."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None) and typing.get_origin(arg) is tuple:
                annotation, origin = arg, tuple
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def config_to_dict(config: object) -> dict[str, Any]:
    """A JSON-ready dict of the config's fields, plus its ``kind`` when it has one."""
    out: dict[str, Any] = {}
    for f in fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    kind = getattr(config, "kind", None)
    if kind is not None:
        out["kind"] = kind
    return out


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict, refusing unknown keys with a closest-match hint."""
    if not isinstance(data, dict):
        raise ConfigError(f"A {cls.__name__} must be a JSON object; got {type(data).__name__}.")
    data = dict(data)
    kind = data.pop("kind", None)
    expected_kind = getattr(cls, "kind", None)
    if kind is not None and expected_kind is not None and kind != expected_kind:
        raise ConfigError(
            f"This config says kind={kind!r} but {cls.__name__} is kind {expected_kind!r}."
        )
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.init]
    unknown = sorted(set(data) - set(known))
    if unknown:
        tips = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            if close:
                tips.append(f"did you mean {close[0]!r} for {key!r}?")
        tip = f" ({'; '.join(tips)})" if tips else ""
        raise ConfigError(
            f"{cls.__name__} has no field(s) {unknown}{tip}; known fields: {sorted(known)}."
        )
    kwargs = {k: _coerce(v, hints.get(k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # e.g. a value of an unhashable type in a frozen dataclass
        raise ConfigError(f"Could not build {cls.__name__} from {data!r}: {err}") from err


# --------------------------------------------------------------------------- shared configs


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model kind shares.

    ``input_shape`` is (channels, height, width) of the images in [0, 1]. ``latent_dim`` is the
    size of a vector latent, or the number of channels of a spatial latent (``spatial=True``,
    latent shape ``(latent_dim, h, w)`` with h = w = ceil(H / 4)).
    """

    kind: ClassVar[str] = ""
    input_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = option(16, low=1, high=4096)
    hidden_dim: int = option(
        64, "MLP width, or the base channel count of the conv nets", low=4, high=4096
    )
    arch: str = option(
        "auto",
        '"auto": MLP when H*W <= 256 (e.g. 8x8 digits), else conv',
        choices=("auto", "mlp", "conv"),
    )
    spatial: bool = option(
        False, "spatial latent tensor (C x h x w) instead of a vector; conv only"
    )

    def __post_init__(self) -> None:
        shape = self.input_shape
        if (
            not isinstance(shape, tuple)
            or len(shape) != 3
            or not all(isinstance(s, int) and s >= 1 for s in shape)
            or shape[0] not in (1, 3)
        ):
            _fail(
                self, "input_shape", "a tuple (channels, height, width) with 1 or 3 channels", shape
            )
        check_fields(self)  # the declared rules of every field, the subclass's fields included
        if self.spatial and self.resolved_arch == "mlp":
            raise ConfigError(
                f"{type(self).__name__}: a spatial latent needs the conv architecture, but "
                f"arch={self.arch!r} with input_shape={shape} resolves to 'mlp'. Set arch='conv' "
                "(inputs of at least 8x8) or spatial=false."
            )
        if self.resolved_arch == "conv" and min(shape[1:]) < 8:
            raise ConfigError(
                f"{type(self).__name__}: the conv architecture needs images of at least 8x8; got "
                f"input_shape={shape}. Use arch='mlp' or 'auto'."
            )

    @property
    def resolved_arch(self) -> str:
        if self.arch != "auto":
            return self.arch
        return "mlp" if self.input_shape[1] * self.input_shape[2] <= 256 else "conv"

    @property
    def input_numel(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


PRECISIONS = ("fp32", "tf32", "bf16")  # TrainConfig.precision
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")  # TrainConfig.compile


def _max_strength() -> float:
    """The upper bound of ``TrainConfig.transform_strength``, read when a config is checked."""
    from lsx.data.transforms import MAX_STRENGTH  # lazy: lsx.config stays light (no torch)

    return MAX_STRENGTH


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, stopping, device and seed."""

    epochs: int = option(20, low=1, high=100_000)
    batch_size: int = option(128, low=1, high=1_000_000)
    lr: float = option(1e-3, low=0.0, low_open=True)
    weight_decay: float = option(0.0, low=0.0)
    seed: int = option(0, low=0)
    device: str = option(
        "auto", '"auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...'
    )
    threads: int = option(
        1, "torch CPU threads; 1 is fastest for small models on 2 shared cores", low=1, high=1024
    )
    patience: int = option(
        0, "early stop after this many epochs without a better test loss; 0 = off", low=0
    )
    min_delta: float = option(
        0.0, "an improvement smaller than this does not count for early stop", low=0.0
    )
    grad_clip: float = option(10.0, "clip the gradient norm; 0 = off", low=0.0)
    max_bad_steps: int = option(
        3, "consecutive non-finite steps before rolling back to the last good state", low=1
    )
    # consistency regularisation (docs/methods.md; lsx.losses.objective); 0 = off
    consistency: float = option(
        0.0, "lambda of KL(q(z|t(x)) || q(z|x)) (official code default 1e-3)", low=0.0
    )
    transforms: str = option(
        "", 'set in lsx.data.transforms.TRANSFORM_SETS; "" = the data\'s default'
    )
    transform_strength: float = option(
        1.0,
        "scales the set's magnitudes; 1 = the published values",
        low=0.0,
        low_open=True,
        high=_max_strength,
    )
    snapshots: int = option(
        0,
        "latent codes of this many fixed test points saved per epoch; 0 = off",
        low=0,
        high=100_000,
    )
    # GPU path and large data (lsx.train); the defaults train exactly as before
    precision: str = option(
        "fp32",
        '"bf16": autocast the networks (loss in fp32); "tf32": TF32 matmuls',
        choices=PRECISIONS,
    )
    compile: str = option(
        "off",
        "torch.compile mode of the training step: off, default, max-autotune",
        choices=COMPILE_MODES,
    )
    workers: int = option(
        0,
        "DataLoader processes reading lazily read data (npy:, large folders); "
        "0 = read in the training process",
        low=0,
        high=64,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        self._check_consistency()
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")
        ):
            _fail(self, "device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", self.device)

    def _check_consistency(self) -> None:
        from lsx.data.transforms import get_set  # lazy: lsx.config stays light

        if not isinstance(self.transforms, str):
            _fail(self, "transforms", "the name of a transform set (a str)", self.transforms)
        if self.transforms:
            get_set(self.transforms)  # ConfigError naming the known sets
        if self.consistency == 0 and (self.transforms or self.transform_strength != 1.0):
            raise ConfigError(
                f"TrainConfig: transforms={self.transforms!r} and transform_strength="
                f"{self.transform_strength!r} only matter for the consistency term, which is off "
                "(consistency=0). Set consistency > 0 (e.g. --consistency 1) or drop them."
            )
