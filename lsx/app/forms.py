"""Forms generated from config dataclasses: one widget per field, with its default, its range or
choices and its help, all read from the dataclass itself.

Nothing here names a model kind or a field of one: :func:`field_specs` reads

- the type hints (bool -> checkbox, int/float -> number input, str -> text or a choice, anything
  else -> a JSON text input),
- the field metadata that :func:`lsx.config.option` declares (``help``, ``low``, ``high``,
  ``low_open``, ``choices``), the same rules the config's ``__post_init__`` enforces
  (:func:`lsx.config.check_fields`); a plain ``dataclasses.field(metadata={...})`` works too.

A bound that is not a number here (another field's name, a function) is not drawn: a value the
widgets let through but the config refuses (such a bound, a rule across fields) is reported with
the config's own ``ConfigError`` message when the form is submitted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lsx.errors import ConfigError


@dataclass(frozen=True)
class FieldSpec:
    """How to draw and check one config field.

    Attributes
    ----------
    name : str
    kind : {"bool", "int", "float", "choice", "str", "json"}
    default : Any
    low, high : float or None
        The field's declared numeric bounds (None: unbounded, or a bound known only to the
        config's check).
    low_open : bool
        The lower bound is exclusive (``option(..., low_open=True)``).
    choices : tuple or None
    help : str
        The field's declared help, plus the rule ("an int >= 1 and <= 4096").
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


# ------------------------------------------------------------------------------ field specs


def _number(bound: Any) -> float | None:
    """A bound the widget can use: a number; None for a field name or a function (the config
    resolves those when it checks the value)."""
    is_number = isinstance(bound, int | float) and not isinstance(bound, bool)
    return bound if is_number else None


@functools.lru_cache(maxsize=64)
def field_specs(cls: type, skip: tuple[str, ...] = ()) -> tuple[FieldSpec, ...]:
    """One :class:`FieldSpec` per init field of the dataclass ``cls``, in declaration order.

    Parameters
    ----------
    cls : dataclass type
        A model config (``MODELS[kind].config_cls``) or ``TrainConfig``.
    skip : tuple of str
        Fields not to show (e.g. those the dataset determines).

    Returns
    -------
    tuple of FieldSpec
    """
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        rule = f.metadata
        choices = rule.get("choices")
        hint = hints.get(f.name)
        if hint is bool:
            kind = "bool"
        elif choices:
            kind = "choice"
        elif hint in (int, float, str):
            kind = hint.__name__
        else:
            kind = "json"
        spec = FieldSpec(
            name=f.name,
            kind=kind,
            default=default,
            low=_number(rule.get("low")),
            high=_number(rule.get("high")),
            low_open=bool(rule.get("low_open", False)),
            choices=tuple(choices) if choices else None,
            help=str(rule.get("help") or ""),
        )
        out.append(dataclasses.replace(spec, help=_help(spec)))
    return tuple(out)


def _help(spec: FieldSpec) -> str:
    parts = [spec.help] if spec.help else []
    if spec.kind in ("int", "float") and (spec.low is not None or spec.high is not None):
        rule = f"an {spec.kind}" if spec.kind == "int" else "a number"
        if spec.low is not None:
            rule += f" {'>' if spec.low_open else '>='} {spec.low}"
        if spec.high is not None:
            rule += f"{' and' if spec.low is not None else ''} <= {spec.high}"
        parts.append(f"Allowed: {rule}.")
    elif spec.kind == "json":
        parts.append("A JSON value, e.g. [] or [1, 2].")
    parts.append(f"Default: {json.dumps(spec.default)}.")
    return "  \n".join(parts)


# ------------------------------------------------------------------------------ widgets


def _step(default: float) -> float:
    """A tenth of the default's order of magnitude (lr 1e-3 -> 1e-4, beta 1 -> 0.1)."""
    if not default or not math.isfinite(default):
        return 0.01
    return 10.0 ** (math.floor(math.log10(abs(default))) - 1)


def widget(spec: FieldSpec, key: str) -> Any:
    """Draw the widget of one field (inside a form) and return its current value.

    JSON fields come back as text; :func:`parse_values` turns them into values.
    """
    if spec.kind == "bool":
        return st.checkbox(spec.label, value=bool(spec.default), key=key, help=spec.help)
    if spec.kind == "choice":
        options = list(spec.choices or ())
        index = options.index(spec.default) if spec.default in options else 0
        return st.selectbox(spec.label, options, index=index, key=key, help=spec.help)
    if spec.kind == "int":
        return st.number_input(
            spec.label,
            value=int(spec.default),
            min_value=None if spec.low is None else int(spec.low) + int(spec.low_open),
            max_value=None if spec.high is None else int(spec.high),
            step=1,
            key=key,
            help=spec.help,
        )
    if spec.kind == "float":
        low = None if spec.low is None or spec.low_open else float(spec.low)
        return st.number_input(
            spec.label,
            value=float(spec.default),
            min_value=low,
            max_value=None if spec.high is None else float(spec.high),
            step=_step(float(spec.default)),
            format="%g",
            key=key,
            help=spec.help,
        )
    if spec.kind == "str":
        return st.text_input(spec.label, value=str(spec.default), key=key, help=spec.help)
    return st.text_input(spec.label, value=json.dumps(spec.default), key=key, help=spec.help)


def draw(specs: Sequence[FieldSpec], prefix: str, columns: int = 3) -> dict[str, Any]:
    """Widgets of ``specs`` in a grid; keys are ``<prefix><field>``. Returns name -> raw value."""
    values: dict[str, Any] = {}
    cols = st.columns(columns)
    for i, spec in enumerate(specs):
        with cols[i % columns]:
            values[spec.name] = widget(spec, f"{prefix}{spec.name}")
    return values


def parse_values(specs: Sequence[FieldSpec], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Turn raw widget values into field values (JSON text parsed; lists become tuples).

    Raises
    ------
    ConfigError
        A JSON field holds text that is not JSON.
    """
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in raw:
            continue
        value = raw[spec.name]
        if spec.kind == "json":
            try:
                value = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError as err:
                raise ConfigError(
                    f"The {spec.name!r} field must be a JSON value such as [] or [1, 2]; got "
                    f"{value!r} ({err.msg})."
                ) from err
            value = _tuples(value)
        elif spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[spec.name] = value
    return out


def _tuples(value: Any) -> Any:
    """JSON lists as (nested) tuples, the form frozen configs hold."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def non_defaults(specs: Sequence[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the field defaults (what a command line needs)."""
    defaults = {s.name: s.default for s in specs}
    return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}
