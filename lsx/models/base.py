"""Parts every model kind shares: the ``Losses`` record, input checks and encoder/decoder nets.

Nets come in two families, picked by ``ModelConfig.resolved_arch``:
- ``mlp``: for tiny inputs (8x8 digits), flatten -> 2 hidden layers -> latent vector;
- ``conv``: two stride-2 convolutions (H -> H/4), then a linear map to a vector latent or a 1x1
  convolution to a spatial latent tensor ``(latent_dim, H/4, W/4)``.
Decoders mirror their encoder and end in a sigmoid, since images live in [0, 1].

Model contract (docs/architecture.md): ``encode(x)``, ``decode(z)``, ``loss(x, y=None)``.
``y`` is what the trainer passes: int64 labels of shape (batch,) when the dataset has one label
attribute, or (batch, n_attributes) in ``Dataset.label_names`` order when it has several (e.g.
``textures``: pattern, colour). Unsupervised kinds ignore it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig
from lsx.errors import DataShapeError


@dataclass
class Losses:
    """A training objective: ``total`` to minimise and its named terms (for logging).

    ``terms`` keys are stable across kinds (``recon``, ``kl``, ...); every value is a 0-d tensor.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    def as_floats(self) -> dict[str, float]:
        out = {"loss": float(self.total.detach())}
        out.update({k: float(v.detach()) for k, v in self.terms.items()})
        return out


_trust = threading.local()


@contextlib.contextmanager
def trusted_inputs() -> Iterator[None]:
    """Within this block (in this thread) :func:`check_input` checks shapes only, not values.

    The trainer uses it: reading ``isfinite(x).all()`` back is a host-device sync per loss call
    on a GPU and a graph break under ``torch.compile``, and a non-finite batch is still caught,
    as a non-finite loss, by the trainer's NaN guard.
    """
    previous = getattr(_trust, "on", False)
    _trust.on = True
    try:
        yield
    finally:
        _trust.on = previous


def check_input(x: torch.Tensor, config: ModelConfig) -> None:
    """Raise DataShapeError unless ``x`` is a finite batch of shape (batch, *input_shape) (the
    values are not read inside :func:`trusted_inputs`)."""
    if not isinstance(x, torch.Tensor):
        raise DataShapeError(f"Expected a torch.Tensor batch; got {type(x).__name__}.")
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(config.input_shape):
        raise DataShapeError(
            f"{config.kind} model expects images of shape "
            f"(batch, {', '.join(map(str, config.input_shape))}); "
            f"got {tuple(x.shape)}. Load the dataset the checkpoint was trained on, or resize "
            "the images to the model's input_shape."
        )
    if not getattr(_trust, "on", False) and not torch.isfinite(x).all():
        raise DataShapeError("The input batch contains NaN or Inf values; clean the data first.")


def latent_grid(config: ModelConfig) -> tuple[int, int]:
    """Height and width after two stride-2 convolutions (kernel 4, padding 1)."""
    _, h, w = config.input_shape
    return h // 4, w // 4


def latent_shape(config: ModelConfig) -> tuple[int, ...]:
    """Shape of one sample's latent: ``(latent_dim,)`` or ``(latent_dim, h, w)``."""
    if config.spatial:
        return (config.latent_dim, *latent_grid(config))
    return (config.latent_dim,)


class Encoder(nn.Module):
    """Image -> latent with ``out_mult * latent_dim`` features (2 for a mean and a log-variance)."""

    def __init__(self, config: ModelConfig, out_mult: int = 1) -> None:
        super().__init__()
        c, h, w = config.input_shape
        hid, out = config.hidden_dim, config.latent_dim * out_mult
        self.spatial = config.spatial
        if config.resolved_arch == "mlp":
            self.net = nn.Sequential(
                nn.Flatten(),
                nn.Linear(c * h * w, hid),
                nn.ReLU(),
                nn.Linear(hid, hid),
                nn.ReLU(),
                nn.Linear(hid, out),
            )
            return
        gh, gw = latent_grid(config)
        layers: list[nn.Module] = [
            nn.Conv2d(c, hid // 2, 4, stride=2, padding=1),  # (B, hid/2, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(hid // 2, hid, 4, stride=2, padding=1),  # (B, hid, H/4, W/4)
            nn.ReLU(),
        ]
        if config.spatial:
            layers.append(nn.Conv2d(hid, out, 1))  # (B, out, H/4, W/4)
        else:
            layers += [nn.Flatten(), nn.Linear(hid * gh * gw, out)]  # (B, out)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent -> image in [0, 1] of the config's ``input_shape``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c, h, w = config.input_shape
        hid, lat = config.hidden_dim, config.latent_dim
        self.out_hw = (h, w)
        if config.resolved_arch == "mlp":
            self.net = nn.Sequential(
                nn.Linear(lat, hid),
                nn.ReLU(),
                nn.Linear(hid, hid),
                nn.ReLU(),
                nn.Linear(hid, c * h * w),
                nn.Unflatten(1, (c, h, w)),
            )
            return
        gh, gw = latent_grid(config)
        if config.spatial:
            head: list[nn.Module] = [nn.Conv2d(lat, hid, 1), nn.ReLU()]
        else:
            head = [nn.Linear(lat, hid * gh * gw), nn.ReLU(), nn.Unflatten(1, (hid, gh, gw))]
        self.net = nn.Sequential(
            *head,  # (B, hid, H/4, W/4)
            nn.ConvTranspose2d(hid, hid // 2, 4, stride=2, padding=1),  # (B, hid/2, H/2, W/2)
            nn.ReLU(),
            nn.ConvTranspose2d(hid // 2, c, 4, stride=2, padding=1),  # (B, C, ~H, ~W)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.net(z)
        if tuple(logits.shape[-2:]) != self.out_hw:  # sizes not divisible by 4
            logits = F.interpolate(logits, size=self.out_hw, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)


def per_sample_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, shape (batch,)."""
    return (x_hat - x).pow(2).flatten(1).mean(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent elements; shape (batch,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
