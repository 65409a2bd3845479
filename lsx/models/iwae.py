"""Importance-weighted autoencoder (Burda, Grosse & Salakhutdinov, ICLR 2016): the VAE's nets
trained on the k-sample bound

    L_k(x) = E[ log (1/k) sum_i p(x, z_i) / q(z_i|x) ],  z_1..z_k ~ q(z|x) independently,

which is the ELBO for k = 1 and tightens towards log p(x) as k grows. One of the VAE variants
that consistency regularisation is applied to (docs/methods.md: "replace each ELBO with the
k-sample bound"; the paper's k is NOT FOUND in P3; lsx default 5, Burda et al. report k in
{1, 5, 50}).

Same nets, ``posterior``, ``encode`` (posterior mean) and ``decode`` as
:class:`~lsx.models.vae.VAE`, so every analysis and the consistency term treat it like a VAE. A
spatial latent is a per-element Gaussian, as in the VAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lsx.config import ModelConfig, option
from lsx.models.base import Losses, check_input, gaussian_kl
from lsx.models.vae import VAE

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class IWAEConfig(ModelConfig):
    kind = "iwae"
    k: int = option(
        5,
        "importance samples per input (NOT FOUND in P3; lsx default 5)",
        low=1,
        high=1000,
        low_is="k = 1 is the plain ELBO",
    )
    likelihood: str = option(
        "bernoulli",
        "p(x|z), as the VAE: bernoulli (BCE) or gaussian (sigma 1)",
        choices=("bernoulli", "gaussian"),
    )


def _normal_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the latent elements; (k, batch)."""
    return (-0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())).flatten(2).sum(-1)


class IWAE(VAE):
    """A VAE trained on the k-sample importance-weighted bound."""

    def __init__(self, config: IWAEConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]  # the VAE's encoder and decoder

    def log_weights(
        self, x: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(x|z_i) + log p(z_i) - log q(z_i|x) for k posterior samples per input.

        Returns
        -------
        log_w, log_px : Tensors of shape (k, batch)
        mu, logvar : Tensors of shape (batch, *latent_shape), the posterior used
        """
        mu, logvar = self.posterior(x)  # (B, *latent_shape) each
        std = (0.5 * logvar).exp()
        z = mu + std * torch.randn(k, *mu.shape, dtype=mu.dtype, device=mu.device)  # (k, B, ...)
        x_hat = self.decode(z.flatten(0, 1)).unflatten(0, (k, len(x)))  # (k, B, C, H, W)
        if self.config.likelihood == "bernoulli":  # the VAE's BCE, summed per image
            nll = F.binary_cross_entropy(x_hat, x.expand_as(x_hat), reduction="none")
        else:  # sigma = 1 without the constant, as the VAE
            nll = 0.5 * (x_hat - x).pow(2)
        log_px = -nll.flatten(2).sum(-1)  # (k, B)
        log_pz = _normal_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _normal_log_prob(z, mu.expand_as(z), logvar.expand_as(z))
        return log_px + log_pz - log_qz, log_px, mu, logvar

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        """Negative k-sample bound, averaged over the batch (nats per sample).

        Terms: ``recon`` (mean -log p(x|z) over the k samples) and ``kl`` (closed-form
        KL(q(z|x) || p(z)), for monitoring; for k > 1 the bound is not recon + kl).
        """
        check_input(x, self.config)
        k = self.config.k
        log_w, log_px, mu, logvar = self.log_weights(x, k)
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (B,)
        kl = gaussian_kl(mu.detach(), logvar.detach()).mean()
        return Losses(total=-bound.mean(), terms={"recon": -log_px.mean(), "kl": kl})
