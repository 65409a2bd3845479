"""The lsx plugin of own_vae: the model kind ``ownvae``, declared in ``pyproject.toml`` as

    [project.entry-points."lsx.models"]
    ownvae = "own_vae.lsx_plugin:SPEC"

A kind is a frozen config dataclass (a subclass of ``lsx.config.ModelConfig`` whose ``kind`` is
the entry point's name) and an ``nn.Module`` built from it with lsx's model contract:
``encode(x) -> z``, ``decode(z) -> x_hat``, ``loss(x, y=None) -> Losses``, ``latent_shape``,
``config``, and here ``posterior(x) -> (mu, logvar)`` (so ``has_posterior=True``).
lsx checks all of it when it loads the plugin (docs/own-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lsx.config import ModelConfig, option
from lsx.errors import ConfigError
from lsx.models import Losses, ModelSpec
from lsx.models.base import check_input
from own_vae.model import ConvVAE, elbo_loss


@dataclass(frozen=True)
class OwnVAEConfig(ModelConfig):
    kind = "ownvae"  # = the entry point's name; run folders record it
    latent_dim: int = option(8, low=1, high=256)
    hidden_dim: int = option(32, "channels of the first convolution", low=4, high=512)
    beta: float = option(1.0, "weight of the KL term", low=0.0)

    def __post_init__(self) -> None:
        super().__post_init__()  # input_shape and every declared rule
        _, h, w = self.input_shape
        if h != w or h % 4:
            raise ConfigError(
                f"OwnVAEConfig: the ConvVAE takes square images whose side is divisible by 4; got "
                f"input_shape={self.input_shape}. Resize the images (e.g. --image-size 28)."
            )
        if self.spatial:
            raise ConfigError("OwnVAEConfig: the ConvVAE has a vector latent; set spatial=false.")


class OwnVAE(nn.Module):
    """ConvVAE behind lsx's model contract; its weights live under ``vae.``."""

    def __init__(self, config: OwnVAEConfig) -> None:
        super().__init__()
        self.config = config
        c, size, _ = config.input_shape
        self.vae = ConvVAE(c, size, config.latent_dim, config.hidden_dim)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(x)[0]  # the posterior mean: the latent lsx maps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        check_input(x, self.config)  # a wrong shape is a message that names both shapes
        x_hat, mu, logvar = self.vae(x)
        _, recon, kl = elbo_loss(x, x_hat, mu, logvar)
        return Losses(total=recon + self.config.beta * kl, terms={"recon": recon, "kl": kl})

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)


SPEC = ModelSpec(
    OwnVAEConfig,
    OwnVAE,
    "own_vae's ConvVAE (a plugin kind from the own-vae package)",
    label="OwnVAE",
    has_posterior=True,
    spatial=False,
)
