"""Reconstruction quality: MSE, PSNR and SSIM per image, and their means over an image set.

Definitions follow SC-VAE's evaluation (docs/methods.md: ``piq.psnr`` / ``piq.ssim`` with
data_range 1 on [0, 1] images, per image, averaged):

- PSNR = 10 log10(data_range^2 / MSE), with MSE floored at 1e-10 (a perfect copy is 100 dB);
- SSIM is Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5, truncated at 3.5 sigma),
  K1 = 0.01, K2 = 0.03, population covariances, averaged over the window positions that fit
  inside the image and over channels. This equals ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)`` (tested).
  Images smaller than 11 pixels (8x8 digits) use the largest window that fits, radius
  r = (min(H, W) - 1) // 2 and sigma = (r - 0.5) / 3.5 (skimage would refuse them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsx.analysis.embedding import _batch, _batches, _check_batch_size, check_images
from lsx.errors import DataShapeError

MSE_FLOOR = 1e-10
SIGMA, TRUNCATE, K1, K2 = 1.5, 3.5, 0.01, 0.03


def _pair(x: np.ndarray | torch.Tensor, x_hat: np.ndarray | torch.Tensor) -> tuple:
    a = torch.as_tensor(np.array(x, dtype=np.float64))
    b = torch.as_tensor(np.array(x_hat, dtype=np.float64))
    if a.shape != b.shape or a.dim() != 4:
        raise DataShapeError(
            f"x and x_hat must both have shape (n, C, H, W); got {tuple(a.shape)} and "
            f"{tuple(b.shape)}."
        )
    return a, b


def psnr(x: np.ndarray, x_hat: np.ndarray, *, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each image.

    Parameters
    ----------
    x, x_hat : ndarrays of shape (n, C, H, W)
    data_range : float, default=1.0

    Returns
    -------
    ndarray of shape (n,), float64
    """
    a, b = _pair(x, x_hat)
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(MSE_FLOOR)
    return (10 * torch.log10(data_range**2 / mse)).numpy()


def _window(size: int) -> torch.Tensor:
    """1-D Gaussian window that fits ``size`` pixels (11 taps when size >= 11)."""
    radius = min(int(TRUNCATE * SIGMA + 0.5), (size - 1) // 2)
    sigma = SIGMA if radius == int(TRUNCATE * SIGMA + 0.5) else max(radius - 0.5, 0.5) / TRUNCATE
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: np.ndarray, x_hat: np.ndarray, *, data_range: float = 1.0) -> np.ndarray:
    """SSIM of each image (module docstring for the exact definition).

    Parameters
    ----------
    x, x_hat : ndarrays of shape (n, C, H, W)
    data_range : float, default=1.0

    Returns
    -------
    ndarray of shape (n,), float64

    Raises
    ------
    DataShapeError
        Shapes differ, or an image is smaller than 3x3 pixels.
    """
    a, b = _pair(x, x_hat)
    n, c, h, w = a.shape
    if min(h, w) < 3:
        raise DataShapeError(f"SSIM needs images of at least 3x3 pixels; got {h}x{w}.")
    win = _window(min(h, w))
    k = len(win)
    wy = win.view(1, 1, k, 1).repeat(c, 1, 1, 1)
    wx = win.view(1, 1, 1, k).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable filter, valid positions only
        return F.conv2d(F.conv2d(t, wy, groups=c), wx, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.flatten(1).mean(1).numpy()


@dataclass(frozen=True, eq=False)
class Quality:
    """Per-image reconstruction metrics of one model on one image set.

    Attributes
    ----------
    mse, psnr, ssim : ndarrays of shape (n_samples,), float64
    """

    mse: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray

    def summary(self) -> dict[str, float]:
        """Means over the images: ``{"mse": ..., "psnr": ..., "ssim": ...}``."""
        return {k: float(np.mean(getattr(self, k))) for k in ("mse", "psnr", "ssim")}


def reconstruction_quality(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 256, data_range: float = 1.0
) -> Quality:
    """MSE, PSNR and SSIM of ``decode(encode(x))`` against ``x``, per image, in batches.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode on CPU.
    x : ndarray of shape (n_samples, C, H, W)
        Images in [0, 1] (use the test split).
    batch_size : int, default=256
    data_range : float, default=1.0

    Returns
    -------
    Quality
    """
    _check_batch_size(batch_size)
    x = check_images(model, x)
    out = {k: np.empty(len(x)) for k in ("mse", "psnr", "ssim")}
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            xb = _batch(x[sl])
            x_hat = model.decode(model.encode(xb)).float().numpy()
            out["mse"][sl] = ((x_hat - x[sl]) ** 2).reshape(len(x_hat), -1).mean(1)
            out["psnr"][sl] = psnr(x[sl], x_hat, data_range=data_range)
            out["ssim"][sl] = ssim(x[sl], x_hat, data_range=data_range)
    return Quality(**out)


def quality_table(
    models: Mapping[str, nn.Module], x: np.ndarray, *, batch_size: int = 256
) -> list[dict[str, float | str]]:
    """One row per named model: mean MSE, PSNR and SSIM on ``x``.

    Parameters
    ----------
    models : mapping name -> model
        Models with the same ``input_shape`` (e.g. scvae, vqvae, vae, ae at matched latent size).
    x : ndarray of shape (n_samples, C, H, W)

    Returns
    -------
    list of dict
        ``{"model": name, "kind": kind, "latent_numel": ..., "mse": ..., "psnr": ...,
        "ssim": ...}``.
    """
    rows: list[dict[str, float | str]] = []
    for name, model in models.items():
        q = reconstruction_quality(model, x, batch_size=batch_size).summary()
        numel = math.prod(model.latent_shape)
        rows.append({"model": name, "kind": model.config.kind, "latent_numel": numel, **q})
    return rows
