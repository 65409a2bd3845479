"""Plain autoencoder: the convolutional AE ("CAE") of the latent-manifold paper (Shrivastava,
Rameshan, Agnihotri 2025, arXiv 2412.04755; docs/methods.md); an MLP when the input is tiny.

The paper fixes no architecture (NOT FOUND in P4); lsx uses the two-stride-conv net of
``lsx.models.base`` so that ``ae``, ``dae`` and ``vae`` share one encoder design.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lsx.config import ModelConfig
from lsx.models.base import Decoder, Encoder, Losses, check_input, latent_shape, per_sample_mse


@dataclass(frozen=True)
class AEConfig(ModelConfig):
    """Config of the plain autoencoder; all fields come from :class:`ModelConfig`."""

    kind = "ae"


class AE(nn.Module):
    """Deterministic autoencoder trained with pixel MSE."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C, H, W) -> (batch, *latent_shape)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(batch, *latent_shape) -> (batch, C, H, W) in [0, 1]."""
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        check_input(x, self.config)
        recon = per_sample_mse(self.decode(self.encode(x)), x).mean()
        return Losses(total=recon, terms={"recon": recon})

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): what the latent map shows beside each input."""
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)
