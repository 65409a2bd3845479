"""A small convolutional VAE written in plain PyTorch: the user's own model, not one of lsx's.

Nothing here imports lsx. ``encode`` returns ``(mu, logvar)``, as most VAEs do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvVAE(nn.Module):
    """Images (channels, H, W) in [0, 1], H and W divisible by 4 -> a Gaussian latent."""

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = 8, width: int = 32):
        super().__init__()
        self.grid = size // 4
        self.width = width
        self.enc = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),  # H/2
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # H/4
            nn.ReLU(),
            nn.Flatten(),
        )
        flat = 2 * width * self.grid * self.grid
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)
        self.from_z = nn.Linear(latent_dim, flat)
        self.dec = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # H/2
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),  # H
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.to_mu(h), self.to_logvar(h).clamp(-20.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_z(z).view(-1, 2 * self.width, self.grid, self.grid)
        return torch.sigmoid(self.dec(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar


def elbo_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Negative ELBO per sample (Bernoulli likelihood), averaged over the batch."""
    recon = F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    return (recon + kl).mean(), recon.mean(), kl.mean()
