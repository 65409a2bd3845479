"""Forms generated from config dataclasses: one widget per field, with its default, its range or
choices and its help, all read from the dataclass itself.

Nothing here names a model kind or a field of one: :func:`field_specs` reads

- the type hints (bool -> checkbox, int/float -> number input, str -> text or a choice, anything
  else -> a JSON text input),
- the trailing comment of each field (``latent_dim: int = 16  # ...``) as its help,
- the ``check_int`` / ``check_float`` / ``check_choice`` calls in ``__post_init__`` (and in the
  ``self._helpers()`` it calls) for ranges and choices, with literal or module-constant
  arguments; anything it cannot evaluate is left to the config's own validation,
- ``dataclasses.field(metadata={"help": ..., "low": ..., "high": ..., "choices": ...})``, which
  overrides all of the above.

A value the widgets let through but the config refuses (an open bound, a rule across fields) is
reported with the config's own ``ConfigError`` message when the form is submitted.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import json
import math
import sys
import textwrap
import tokenize
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lsx.errors import ConfigError

_CHECKS = ("check_int", "check_float", "check_choice")


@dataclass(frozen=True)
class FieldSpec:
    """How to draw and check one config field.

    Attributes
    ----------
    name : str
    kind : {"bool", "int", "float", "choice", "str", "json"}
    default : Any
    low, high : float or None
        Bounds found in the config's checks (None: unbounded or not found).
    low_open : bool
        The lower bound is exclusive (``check_float(..., low_open=True)``).
    choices : tuple or None
    help : str
        The field's comment, plus the rule ("an int >= 1 and <= 4096").
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


# ------------------------------------------------------------------------------ source reading


def _class_source(cls: type) -> tuple[ast.ClassDef, str] | None:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    node = tree.body[0]
    return (node, source) if isinstance(node, ast.ClassDef) else None


def _comments(source: str) -> dict[int, str]:
    """Line number -> comment text (without '#') of a source string."""
    out: dict[int, str] = {}
    with_tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        for tok in with_tokens:
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment(s) on the lines of its annotated assignment, for the MRO."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        found = _class_source(klass) if dataclasses.is_dataclass(klass) else None
        if found is None:
            continue
        node, source = found
        comments = _comments(source)
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                lines = range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
                text = " ".join(comments[i] for i in lines if i in comments)
                if text:
                    out[stmt.target.id] = text
    return out


def _evaluate(node: ast.AST, namespace: Mapping[str, Any]) -> Any:
    """A literal, a module constant (``NAMES``) or a constant of an imported module
    (``cfgs.DESIGNS``); raises ValueError for anything else (e.g. ``self.latent_dim``)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Name) and node.id in namespace:
        value = namespace[node.id]
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner = namespace.get(node.value.id)
        if owner is None or not hasattr(owner, node.attr):
            raise ValueError(node.attr)
        value = getattr(owner, node.attr)
    else:
        raise ValueError(ast.dump(node))
    if isinstance(value, int | float | str | tuple | bool) or value is None:
        return value
    raise ValueError(repr(value))


def _methods(node: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}


def _rules_of(klass: type) -> dict[str, dict[str, Any]]:
    """Field -> {low, high, low_open, choices} from the check_* calls of ``__post_init__`` and
    the ``self._helper()`` methods it calls (one level of the class, followed recursively)."""
    found = _class_source(klass)
    if found is None:
        return {}
    node, _ = found
    methods = _methods(node)
    namespace = vars(sys.modules.get(klass.__module__)) if klass.__module__ in sys.modules else {}
    rules: dict[str, dict[str, Any]] = {}
    todo, seen = ["__post_init__"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in methods:
            continue
        seen.add(name)
        loops = _loop_names(methods[name])
        for call in (n for n in ast.walk(methods[name]) if isinstance(n, ast.Call)):
            func = call.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "self" and func.attr in methods:
                    todo.append(func.attr)
                continue
            if not (isinstance(func, ast.Name) and func.id in _CHECKS and len(call.args) >= 2):
                continue
            target = call.args[1]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                targets: tuple[str, ...] = (target.value,)
            elif isinstance(target, ast.Name) and target.id in loops:
                targets = loops[target.id]  # for name in ("a", "b"): check_float(self, name)
            else:
                continue
            rule: dict[str, Any] = {}
            args = {"choices": call.args[2]} if len(call.args) > 2 else {}
            if func.id != "check_choice" and len(call.args) > 2:
                args = dict(zip(("low", "high"), call.args[2:4], strict=False))
            args.update({k.arg: k.value for k in call.keywords if k.arg})
            for key, value_node in args.items():
                try:
                    rule[key] = _evaluate(value_node, namespace)
                except ValueError:
                    continue  # a bound that depends on other fields: the config checks it
            rules.update({t: rule for t in targets})
    return rules


def _loop_names(func: ast.FunctionDef) -> dict[str, tuple[str, ...]]:
    """Loop variables bound to a literal tuple of field names: ``for name in ("a", "b")``."""
    out: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            try:
                names = ast.literal_eval(node.iter)
            except ValueError:
                continue
            if isinstance(names, tuple | list) and all(isinstance(n, str) for n in names):
                out[node.target.id] = tuple(names)
    return out


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
    comments = _field_comments(cls)
    rules: dict[str, dict[str, Any]] = {}
    for klass in reversed(cls.__mro__):  # base classes first; a subclass's rule wins
        if dataclasses.is_dataclass(klass):
            rules.update(_rules_of(klass))
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        rule = {**rules.get(f.name, {}), **dict(f.metadata)}
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
            low=rule.get("low"),
            high=rule.get("high"),
            low_open=bool(rule.get("low_open", False)),
            choices=tuple(choices) if choices else None,
            help=str(rule.get("help") or comments.get(f.name, "")),
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
