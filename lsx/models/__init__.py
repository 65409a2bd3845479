"""The one registry of model kinds. Pickers, loader, CLI and tests iterate over ``MODELS``; a new
kind is one module plus one entry here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from lsx.config import ModelConfig, config_from_dict
from lsx.errors import ConfigError
from lsx.models.ae import AE, AEConfig
from lsx.models.base import Losses
from lsx.models.dae import DAE, DAEConfig
from lsx.models.vae import VAE, VAEConfig


@dataclass(frozen=True)
class ModelSpec:
    config_cls: type[ModelConfig]
    module_cls: type[nn.Module]
    summary: str  # one line, shown next to the kind in the app and the CLI


MODELS: dict[str, ModelSpec] = {
    "ae": ModelSpec(AEConfig, AE, "autoencoder (convolutional; MLP for tiny inputs)"),
    "dae": ModelSpec(DAEConfig, DAE, "denoising autoencoder (noise kind and level in the config)"),
    "vae": ModelSpec(VAEConfig, VAE, "Gaussian VAE with a beta weight on the KL term"),
}


def spec_for(kind: str) -> ModelSpec:
    if kind not in MODELS:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODELS))}")
    return MODELS[kind]


def make_config(kind: str, **fields: Any) -> ModelConfig:
    """The config of ``kind`` with the given fields (unknown fields are a ConfigError)."""
    return config_from_dict(spec_for(kind).config_cls, fields)


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


__all__ = [
    "MODELS",
    "Losses",
    "ModelSpec",
    "build_model",
    "config_from_json_dict",
    "make_config",
    "spec_for",
]
