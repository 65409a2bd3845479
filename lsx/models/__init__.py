"""The one registry of model kinds. Pickers, loader, CLI, pages and tests iterate over ``MODELS``
and ask it what a kind is called and what it can do (:class:`ModelSpec`, :func:`kinds_with`)
instead of testing ``kind == ...``; a new kind is one module plus one entry here.
``tests/models/test_registry.py`` checks every capability against the classes themselves.

Installed packages add kinds through entry points of the group ``lsx.models``
(:mod:`lsx.models.plugins`, docs/own-model.md): they are checked, then appended to ``MODELS``
after the built-in kinds, so every picker, the CLI and the loader see them like built-in ones."""

from __future__ import annotations

from typing import Any

from torch import nn

from lsx.config import ModelConfig, config_from_dict
from lsx.errors import ConfigError
from lsx.models.ae import AE, AEConfig
from lsx.models.base import Losses
from lsx.models.dae import DAE, DAEConfig
from lsx.models.iwae import IWAE, IWAEConfig
from lsx.models.plugins import Plugin, PluginProblem, discover
from lsx.models.sae import SAE, SAEConfig
from lsx.models.scvae import SCVAE, SCVAEConfig
from lsx.models.spec import ModelSpec
from lsx.models.vae import VAE, VAEConfig
from lsx.models.vqvae import VQVAE, VQVAEConfig

MODELS: dict[str, ModelSpec] = {
    "ae": ModelSpec(
        AEConfig,
        AE,
        "autoencoder (convolutional; MLP for tiny inputs)",
        label="AE",
        conv_label="CAE",
        manifold=True,
    ),
    "dae": ModelSpec(
        DAEConfig,
        DAE,
        "denoising autoencoder (noise kind and level in the config)",
        label="DAE",
        manifold=True,
    ),
    "vae": ModelSpec(
        VAEConfig,
        VAE,
        "Gaussian VAE with a beta weight on the KL term",
        label="VAE",
        has_posterior=True,
        manifold=True,
    ),
    "iwae": ModelSpec(
        IWAEConfig,
        IWAE,
        "importance-weighted VAE: k-sample bound, VAE nets",
        label="IWAE",
        has_posterior=True,
    ),
    "sae": ModelSpec(
        SAEConfig,
        SAE,
        "supervised AE with configured latent clusters",
        label="SAE",
        has_centres=True,
    ),
    "scvae": ModelSpec(
        SCVAEConfig,
        SCVAE,
        "sparse-coding VAE: learned ISTA over K atoms",
        label="SC-VAE",
        dictionary="atoms",
        sparse_codes=True,
        partner="vqvae",
    ),
    "vqvae": ModelSpec(
        VQVAEConfig,
        VQVAE,
        "VQ-VAE: nearest of K codebook vectors per grid cell",
        label="VQ-VAE",
        dictionary="codebook vectors",
        partner="scvae",
    ),
}

BUILTIN_KINDS = tuple(MODELS)
PLUGINS: dict[str, Plugin] = {}  # plugin kind -> the package (and version) that provides it
PLUGIN_PROBLEMS: list[PluginProblem] = []  # entry points refused, with the reason


def load_plugins() -> None:
    """(Re)read the ``lsx.models`` entry points of the installed packages into ``MODELS``.

    Runs once when ``lsx.models`` is imported, at the end of this module (so a plugin's own
    ``from lsx.models import ModelSpec`` finds it). Call it again after installing a package
    into a running process; the dicts are updated in place, so imported names stay valid.
    """
    for kind in PLUGINS:
        MODELS.pop(kind, None)
    PLUGINS.clear()
    PLUGIN_PROBLEMS.clear()
    builtin = {kind: MODELS[kind] for kind in BUILTIN_KINDS}
    specs, plugins, problems = discover(builtin)
    MODELS.update(specs)
    PLUGINS.update(plugins)
    PLUGIN_PROBLEMS.extend(problems)


CAPABILITIES = (
    "has_posterior",
    "has_dictionary",
    "sparse_codes",
    "has_centres",
    "spatial",
    "manifold",
)


def kinds_with(capability: str) -> tuple[str, ...]:
    """The kinds that have ``capability`` (one of :data:`CAPABILITIES`), in registry order.

    Raises
    ------
    ConfigError
        An unknown capability name.
    """
    if capability not in CAPABILITIES:
        raise ConfigError(
            f"Unknown model capability {capability!r}; use one of {', '.join(CAPABILITIES)}."
        )
    return tuple(kind for kind, spec in MODELS.items() if getattr(spec, capability))


def display_label(config: ModelConfig) -> str:
    """The name of a run's model family: ``conv_label`` when its network is convolutional
    ("CAE" for an ``ae`` on 28x28 images), else ``label`` ("AE" for the MLP of 8x8 digits)."""
    spec = spec_for(config.kind)
    conv = getattr(config, "resolved_arch", None) == "conv"
    return spec.conv_label if conv and spec.conv_label else spec.label


def spec_for(kind: str) -> ModelSpec:
    """The registry entry of ``kind``; a ConfigError naming the known kinds for any other."""
    if kind not in MODELS:
        failed = [p for p in PLUGIN_PROBLEMS if p.kind == kind]  # say why, not just "unknown"
        why = f" ({failed[0]})" if failed else ""
        raise ConfigError(
            f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODELS))}{why}"
        )
    return MODELS[kind]


def make_config(kind: str, **fields: Any) -> ModelConfig:
    """The config of ``kind`` with the given fields (unknown fields are a ConfigError)."""
    return config_from_dict(spec_for(kind).config_cls, fields)


def dataset_fields(kind: str, dataset: Any) -> dict[str, Any]:
    """Config fields a dataset determines: ``input_shape``, plus what the kind's config class
    derives from the data through an optional ``dataset_fields(dataset)`` classmethod (e.g. the
    class counts of a supervised kind)."""
    hook = getattr(spec_for(kind).config_cls, "dataset_fields", None)
    return {"input_shape": dataset.input_shape, **(hook(dataset) if hook else {})}


def config_from_json_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from its ``config_to_dict`` form, dispatching on ``kind``."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(
            "A model config must be a JSON object with a 'kind' key; known kinds: "
            f"{', '.join(sorted(MODELS))}."
        )
    return config_from_dict(spec_for(data["kind"]).config_cls, data)


def build_model(config: ModelConfig) -> nn.Module:
    return spec_for(config.kind).module_cls(config)


load_plugins()  # last: plugin modules import this package's names

__all__ = [
    "BUILTIN_KINDS",
    "CAPABILITIES",
    "MODELS",
    "PLUGINS",
    "PLUGIN_PROBLEMS",
    "Losses",
    "ModelSpec",
    "Plugin",
    "PluginProblem",
    "build_model",
    "config_from_json_dict",
    "dataset_fields",
    "display_label",
    "kinds_with",
    "load_plugins",
    "make_config",
    "spec_for",
]
