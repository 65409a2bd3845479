"""Model kinds from installed packages: entry points of the group ``lsx.models``.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."lsx.models"]
    ownvae = "own_vae.lsx_plugin:SPEC"

where ``SPEC`` is a :class:`~lsx.models.spec.ModelSpec` whose ``config_cls.kind`` is the entry
point's name (docs/own-model.md). Only installed distributions are read (``importlib.metadata``):
lsx never imports code from a run folder or an upload. Each plugin is loaded and checked on its
own, so one that fails to import, collides with a built-in kind or breaks the model contract is
reported (:class:`PluginProblem`) and the others still load.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lsx.config import ModelConfig
from lsx.errors import ConfigError, LsxError
from lsx.models.base import Losses
from lsx.models.spec import ModelSpec

GROUP = "lsx.models"
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a CLI value, a run-name prefix, a JSON key
PACKAGE_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?$")  # PEP 508 name
# capabilities that name lsx internals a plugin class does not have (atoms, codebook, centres,
# the paper comparisons of the Atoms and Manifold pages): refused rather than trusted
BUILTIN_ONLY = ("dictionary", "sparse_codes", "has_centres", "partner", "manifold")


class PluginWarning(UserWarning):
    """A plugin that was not loaded (shown once per process; the Home page lists it too)."""


@dataclass(frozen=True)
class Plugin:
    """Where a plugin kind comes from."""

    kind: str
    package: str  # the distribution's name, as ``pip install`` takes it
    version: str
    target: str  # the entry point's value, ``module:attribute``


@dataclass(frozen=True)
class PluginProblem:
    """A plugin kind that was not loaded, and why."""

    kind: str
    package: str
    version: str
    target: str
    message: str

    def __str__(self) -> str:
        return (
            f"kind {self.kind!r} of the package {self.package} {self.version} ({self.target}) "
            f"was not loaded: {self.message}"
        )


def discover(
    taken: Mapping[str, ModelSpec],
    entry_points: Iterable[md.EntryPoint] | None = None,
) -> tuple[dict[str, ModelSpec], dict[str, Plugin], list[PluginProblem]]:
    """Load and check every ``lsx.models`` entry point of the installed distributions.

    Parameters
    ----------
    taken : mapping
        The built-in kinds; a plugin of the same name (or display label) is refused.
    entry_points : iterable of EntryPoint, optional
        Default: ``importlib.metadata.entry_points(group="lsx.models")``.

    Returns
    -------
    specs : dict
        ``{kind: ModelSpec}`` of the plugins that passed, sorted by kind.
    plugins : dict
        ``{kind: Plugin}``: the package and version of each.
    problems : list of PluginProblem
        The entry points refused, with the reason (also issued once as a :class:`PluginWarning`).
    """
    if entry_points is None:
        entry_points = md.entry_points(group=GROUP)
    specs: dict[str, ModelSpec] = {}
    plugins: dict[str, Plugin] = {}
    problems: list[PluginProblem] = []
    labels = {spec.label for spec in taken.values()}
    for ep in sorted(entry_points, key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        package = getattr(dist, "name", None) or "(unknown package)"
        version = getattr(dist, "version", None) or "?"
        origin = Plugin(ep.name, package, version, ep.value)
        try:
            spec = _load(ep)
            check_spec(ep.name, spec, taken, specs, labels)
        except Exception as err:  # anything the plugin's import or model code raises
            text = str(err) if isinstance(err, LsxError) else f"{type(err).__name__}: {err}"
            problems.append(PluginProblem(ep.name, package, version, ep.value, _first(text)))
            continue
        specs[ep.name], plugins[ep.name] = spec, origin
        labels.add(spec.label)
    for problem in problems:
        warnings.warn(str(problem), PluginWarning, stacklevel=2)
    return specs, plugins, problems


def _load(ep: md.EntryPoint) -> object:
    try:
        return ep.load()
    except SystemExit as err:  # a module that exits at import must not end the app
        raise ConfigError(f"importing it called sys.exit({err.code!r})") from None


def _first(text: str, limit: int = 400) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check_spec(
    kind: str,
    spec: object,
    builtin: Mapping[str, ModelSpec],
    loaded: Mapping[str, ModelSpec] = {},  # noqa: B006 (read only)
    labels: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Refuse a plugin spec that is not a model kind lsx can use like its own.

    Checked: the name (free, not a built-in kind), the spec's type and classes, the capabilities
    a plugin may claim (:data:`BUILTIN_ONLY` are refused), and the model contract on a batch of
    two random inputs of the default config: ``encode``, ``decode`` back to the input shape,
    ``latent_shape``, ``loss -> Losses`` with a finite 0-d total, ``posterior`` exactly when
    ``has_posterior``, and a spatial latent exactly when ``spatial`` is claimed.

    Raises
    ------
    ConfigError
        What is wrong and what the plugin's author should change.
    """
    if kind in builtin:
        raise ConfigError(
            f"{kind!r} is a built-in lsx kind; a plugin cannot replace it. Rename the entry "
            "point and the config's kind."
        )
    if kind in loaded:
        raise ConfigError(f"another installed package already provides kind {kind!r}")
    if not KIND_PATTERN.match(kind):
        raise ConfigError(
            f"the kind name {kind!r} must be 1-32 lowercase letters, digits or _, starting with "
            "a letter"
        )
    if not isinstance(spec, ModelSpec):
        raise ConfigError(
            f"the entry point must name an lsx.models.ModelSpec; it names a {type(spec).__name__}"
        )
    cls = spec.config_cls
    if not (isinstance(cls, type) and issubclass(cls, ModelConfig)):
        raise ConfigError("ModelSpec.config_cls must be a subclass of lsx.config.ModelConfig")
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise ConfigError(f"{cls.__name__} must be a @dataclass(frozen=True)")
    if cls.kind != kind:
        raise ConfigError(
            f"{cls.__name__}.kind is {cls.kind!r} but the entry point is named {kind!r}; make "
            "them the same (run folders record the kind)"
        )
    if not (isinstance(spec.module_cls, type) and issubclass(spec.module_cls, nn.Module)):
        raise ConfigError("ModelSpec.module_cls must be a torch.nn.Module subclass")
    if not spec.label or spec.label in labels:
        raise ConfigError(f"its label {spec.label!r} is empty or already used by another kind")
    claimed = [name for name in BUILTIN_ONLY if getattr(spec, name)]
    if claimed:
        raise ConfigError(
            f"a plugin kind cannot claim {', '.join(claimed)}: those name lsx's own classes "
            "(atoms, codebooks, centres, the paper comparisons); leave them at their defaults"
        )
    _check_contract(spec)


def _check_contract(spec: ModelSpec) -> None:
    name = spec.module_cls.__name__
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the caller's RNG is untouched
        torch.manual_seed(0)
        config = spec.config_cls()
        model = spec.module_cls(config).eval()
        x = torch.rand(2, *config.input_shape)
        z = model.encode(x)
        if not isinstance(z, torch.Tensor) or z.shape[0] != 2:
            raise ConfigError(f"{name}.encode(x) must return a tensor (batch, *latent_shape)")
        if tuple(z.shape[1:]) != tuple(model.latent_shape):
            raise ConfigError(
                f"{name}.encode gave latents of shape {tuple(z.shape[1:])} but its latent_shape "
                f"says {tuple(model.latent_shape)}"
            )
        x_hat = model.decode(z)
        if tuple(x_hat.shape) != tuple(x.shape):
            raise ConfigError(
                f"{name}.decode(encode(x)) has shape {tuple(x_hat.shape)}; x has shape "
                f"{tuple(x.shape)}. decode must return images of the input's shape."
            )
        with torch.enable_grad():
            losses = model.train().loss(x)
        model.eval()
        if not isinstance(losses, Losses) or losses.total.dim() != 0:
            raise ConfigError(f"{name}.loss(x) must return lsx.models.Losses with a 0-d total")
        if not torch.isfinite(losses.total):
            raise ConfigError(f"{name}.loss(x) is not finite on random inputs in [0, 1]")
        posterior = getattr(model, "posterior", None)
        if spec.has_posterior != callable(posterior):
            have = "has" if callable(posterior) else "has no"
            raise ConfigError(
                f"has_posterior={spec.has_posterior} but {name} {have} posterior(x); set it to "
                "what the class does"
            )
        if callable(posterior):
            mu, logvar = posterior(x)
            if mu.shape != z.shape or logvar.shape != z.shape:
                raise ConfigError(f"{name}.posterior(x) must return (mu, logvar) shaped as z")
        _check_spatial(spec, name)


def _check_spatial(spec: ModelSpec, name: str) -> None:
    """``spatial`` claimed: a spatial config gives a (C, h, w) latent; not claimed: the config
    refuses ``spatial=True`` (so the Train form's choice is refused, not silently ignored)."""
    try:
        config = spec.config_cls(spatial=True, arch="conv")
    except ConfigError:
        if spec.spatial:
            raise ConfigError(
                f"spatial=True is claimed but {spec.config_cls.__name__}(spatial=True, "
                "arch='conv') is refused"
            ) from None
        return
    if not spec.spatial:
        raise ConfigError(
            f"{spec.config_cls.__name__} accepts spatial=True but the spec says spatial=False; "
            "refuse it in __post_init__ (raise lsx.errors.ConfigError) or claim spatial=True"
        )
    z = spec.module_cls(config).eval().encode(torch.rand(2, *config.input_shape))
    if z.dim() != 4:
        raise ConfigError(f"spatial=True is claimed but {name} gives a latent of shape {z.shape}")


def missing_kind_reason(
    kind: str,
    recorded: object,
    problems: Iterable[PluginProblem],
    known: Iterable[str] = (),
) -> str:
    """Why a run of ``kind`` cannot be opened: no installed package provides the kind.

    ``recorded`` is what the run's ``config.json`` says of its plugin (``{"package": ...}``; read
    defensively, it is untrusted), or None; a plugin of that kind that failed to load is named
    with its error. ``known``: the kinds there are, listed last.
    """
    kind = kind if len(kind) <= 40 else kind[:40] + "..."
    package = recorded.get("package") if isinstance(recorded, dict) else None
    if not (isinstance(package, str) and PACKAGE_PATTERN.match(package)):
        package = None  # not a distribution name (the reason is shown as Markdown): left out
    tail = (
        f" (unknown model kind {kind!r}; known kinds: {', '.join(sorted(known))})" if known else ""
    )
    failed = [p for p in problems if p.kind == kind]
    if failed:
        p = failed[0]
        return (
            f"kind {kind!r} comes from the package {p.package} {p.version}, which failed to load: "
            f"{p.message}{tail}"
        )
    named = f" ({package})" if package else ""
    return (
        f"kind {kind!r} is not installed: install the package that provides kind {kind!r}{named}, "
        f"then restart lsx{tail}"
    )
