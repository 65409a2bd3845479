"""Denoising autoencoder (Vincent et al., ICML 2008): reconstruct the clean image from a corrupted
one. One of the three kinds compared by the latent-manifold paper (docs/methods.md); the
paper's corruption level is NOT FOUND; lsx defaults to Gaussian noise, sigma 0.3 (docs/methods.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lsx.config import ModelConfig, option
from lsx.models.ae import AE
from lsx.models.base import Losses, check_input, per_sample_mse

NOISE_KINDS = ("gaussian", "masking", "salt_pepper")


@dataclass(frozen=True)
class DAEConfig(ModelConfig):
    kind = "dae"
    noise: str = option(
        "gaussian",
        "gaussian: x + N(0, level^2); masking: zero a fraction; salt_pepper",
        choices=NOISE_KINDS,
    )
    noise_level: float = option(
        0.3, "sigma for gaussian, corrupted fraction for the others", low=0.0, high=1.0
    )


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    """The DAE's input corruption, clipped back to [0, 1]; uses torch's global RNG."""
    if noise == "gaussian":
        return (x + level * torch.randn_like(x)).clamp(0.0, 1.0)
    hit = torch.rand_like(x) < level
    if noise == "masking":
        return x.masked_fill(hit, 0.0)
    salt = (torch.rand_like(x) < 0.5).to(x.dtype)  # salt_pepper: hit pixels become 0 or 1
    return torch.where(hit, salt, x)


class DAE(AE):
    """Same nets as :class:`~lsx.models.ae.AE`; only the training loss differs."""

    def __init__(self, config: DAEConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        check_input(x, self.config)
        x_noisy = corrupt(x, self.config.noise, self.config.noise_level)
        recon = per_sample_mse(self.decode(self.encode(x_noisy)), x).mean()
        return Losses(total=recon, terms={"recon": recon})
