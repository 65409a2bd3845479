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
from lsx.models.iwae import IWAE, IWAEConfig
from lsx.models.sae import SAE, SAEConfig
from lsx.models.scvae import SCVAE, SCVAEConfig
from lsx.models.vae import VAE, VAEConfig
from lsx.models.vqvae import VQVAE, VQVAEConfig


@dataclass(frozen=True)
class ModelSpec:
    config_cls: type[ModelConfig]
    module_cls: type[nn.Module]
    summary: str  # one line, shown next to the kind in the app and the CLI


MODELS: dict[str, ModelSpec] = {
    "ae": ModelSpec(AEConfig, AE, "autoencoder (convolutional; MLP for tiny inputs)"),
    "dae": ModelSpec(DAEConfig, DAE, "denoising autoencoder (noise kind and level in the config)"),
    "vae": ModelSpec(VAEConfig, VAE, "Gaussian VAE with a beta weight on the KL term"),
    "iwae": ModelSpec(IWAEConfig, IWAE, "importance-weighted VAE: k-sample bound, VAE nets"),
    "sae": ModelSpec(SAEConfig, SAE, "supervised AE with configured latent clusters"),
    "scvae": ModelSpec(SCVAEConfig, SCVAE, "sparse-coding VAE: learned ISTA over K atoms"),
    "vqvae": ModelSpec(VQVAEConfig, VQVAE, "VQ-VAE: nearest of K codebook vectors per grid cell"),
}


def spec_for(kind: str) -> ModelSpec:
    if kind not in MODELS:
        raise ConfigError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODELS))}")
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


__all__ = [
    "MODELS",
    "Losses",
    "ModelSpec",
    "build_model",
    "config_from_json_dict",
    "dataset_fields",
    "make_config",
    "spec_for",
]
