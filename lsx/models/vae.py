"""Gaussian VAE (Kingma & Welling, ICLR 2014) with a beta weight on the KL term (Higgins et al.,
ICLR 2017). The VAE of the manifold paper (docs/methods.md) and the base of the consistency
regularisation of docs/methods.md.

``encode`` returns the posterior mean, the latent every analysis uses; ``posterior`` gives
(mu, logvar). A spatial latent is a per-element Gaussian over the (latent_dim, h, w) tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig, option
from lsx.models.base import Decoder, Encoder, Losses, check_input, gaussian_kl, latent_shape


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    kind = "vae"
    beta: float = option(1.0, "weight of the KL term; 1 is the plain ELBO, > 1 a beta-VAE", low=0.0)
    likelihood: str = option(
        "bernoulli",
        "p(x|z): bernoulli (BCE) or gaussian (sigma = 1, i.e. SSE / 2)",
        choices=("bernoulli", "gaussian"),
    )


class VAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, out_mult=2)  # mean and log-variance
        self.decoder = Decoder(config)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (batch, *latent_shape)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)  # keeps exp() finite early in training

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean, (batch, *latent_shape)."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        """Negative ELBO with a beta-weighted KL, averaged over the batch (nats per sample)."""
        check_input(x, self.config)
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        x_hat = self.decode(z)
        if self.config.likelihood == "bernoulli":
            nll = F.binary_cross_entropy(x_hat, x, reduction="none")
        else:
            nll = 0.5 * (x_hat - x).pow(2)
        recon = nll.flatten(1).sum(1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return Losses(total=recon + self.config.beta * kl, terms={"recon": recon, "kl": kl})

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)
