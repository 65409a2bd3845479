"""VQ-VAE (A. van den Oord, O. Vinyals, K. Kavukcuoglu, "Neural Discrete Representation
Learning", NeurIPS 2017): the vector-quantised baseline that SC-VAE is compared against
(docs/methods.md), at the same latent grid and dictionary size K.

The encoder maps the image to a grid ``z_e`` of shape (latent_dim, h, w) (a vector latent is a
1x1 grid); each position is replaced by its nearest of K codebook vectors ``e_k``; the decoder
reconstructs the image from the quantised grid ``z_q``. Loss (van den Oord et al., eq. 3):

    MSE(x, x_tilde) + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2

with straight-through gradients ``z_q = z_e + sg[e - z_e]``. No dead-code restarts and no EMA
updates, on purpose: the app measures codebook collapse beside SC-VAE's atom usage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig, option
from lsx.models.base import Decoder, Encoder, Losses, check_input, latent_shape, per_sample_mse


@dataclass(frozen=True)
class VQVAEConfig(ModelConfig):
    kind = "vqvae"
    n_codes: int = option(
        64, "K codebook vectors, matched to scvae's n_atoms for comparisons", low=2, high=65_536
    )
    commitment: float = option(
        0.25, "beta of the commitment term (van den Oord et al.: 0.25)", low=0.0
    )


class VQVAE(nn.Module):
    """Encoder -> nearest codebook vector per grid position -> decoder."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)  # z_e: (B, n, h, w) spatial, else (B, n)
        self.decoder = Decoder(config)
        k = config.n_codes
        # uniform(-1/K, 1/K), the common VQ-VAE init (NOT FOUND in P2; lsx default)
        self.codebook = nn.Parameter(torch.empty(k, config.latent_dim).uniform_(-1 / k, 1 / k))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_e, codebook vectors e (both (B, *latent_shape)) and indices (B, h, w)."""
        z_e = self.encoder(x)
        zp = z_e.movedim(1, -1) if z_e.dim() == 4 else z_e[:, None, None, :]  # (B, h, w, n)
        book = self.codebook  # (K, n)
        dist = zp.pow(2).sum(-1, keepdim=True) - 2 * zp @ book.t() + book.pow(2).sum(-1)
        idx = dist.argmin(-1)  # (B, h, w)
        e = book[idx]  # (B, h, w, n)
        e = e.movedim(-1, 1) if z_e.dim() == 4 else e[:, 0, 0, :]
        return z_e, e, idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Quantised latent ``z_q`` (B, *latent_shape): the codebook vector at each position."""
        return self._quantize(x)[1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, *latent_shape) -> (B, C, H, W) in [0, 1]; ``z`` is decoded as given (no snapping
        to the codebook), so points between codes can be decoded too."""
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        check_input(x, self.config)
        z_e, e, _ = self._quantize(x)
        z_q = z_e + (e - z_e).detach()  # straight-through estimator
        recon = per_sample_mse(self.decode(z_q), x).mean()
        codebook = F.mse_loss(e, z_e.detach())  # moves the codes to the encoder outputs
        commitment = F.mse_loss(z_e, e.detach())  # keeps the encoder near its code
        total = recon + codebook + self.config.commitment * commitment
        return Losses(
            total=total, terms={"recon": recon, "codebook": codebook, "commitment": commitment}
        )

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices, (B, h, w) int64; a vector latent gives h = w = 1."""
        check_input(x, self.config)
        return self._quantize(x)[2]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)
