"""Run a trained autoencoder over arrays: latent codes, reconstructions and per-sample errors.

Pure functions: a model plus numpy arrays in, numpy arrays out. The model is used as it is given
(already ``eval()`` and on ``device``); nothing here calls ``train()``/``eval()``/``to()`` on it or
writes to it, so one cached model can serve many threads. Work is batched
under :func:`torch.inference_mode` so memory stays bounded by ``batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lsx.errors import ConfigError, DataShapeError


@dataclass(frozen=True, eq=False)
class Embedding:
    """Latent codes and reconstruction errors of one array of images, from one pass.

    Attributes
    ----------
    z : ndarray of shape (n_samples, latent_numel), float32
        ``model.encode(x)`` flattened per sample (a spatial latent ``(latent_dim, h, w)`` becomes
        ``latent_dim * h * w`` columns, in C order).
    recon_error : ndarray of shape (n_samples,), float32
        Mean squared error per sample between ``x`` and ``decode(encode(x))``.
    """

    z: np.ndarray
    recon_error: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.z.shape[0])


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1; got {batch_size!r}. Use e.g. 512.")


def check_images(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous float32 of shape (n, *input_shape); DataShapeError otherwise."""
    expected = tuple(model.config.input_shape)
    x = np.asarray(x)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        c, h, w = expected
        raise DataShapeError(
            f"The {model.config.kind} model expects images of shape (n, {c}, {h}, {w}); got an "
            f"array of shape {x.shape}. Load the dataset the checkpoint was trained on, or "
            "resize the images to the model's input_shape."
        )
    if not np.issubdtype(x.dtype, np.number):
        raise DataShapeError(f"Images must be numeric (float32 in [0, 1]); got dtype {x.dtype}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataShapeError(
            f"The images contain {int((~np.isfinite(x)).sum())} NaN or Inf values; clean the data "
            "first."
        )
    return x


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _batch(a: np.ndarray) -> torch.Tensor:
    """A batch as a tensor; copies when the array is read-only (lsx.data returns such arrays)."""
    return torch.from_numpy(a if a.flags.writeable else np.array(a))


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def encode_array(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """Encode images to flat latent vectors, in batches.

    Parameters
    ----------
    model : nn.Module
        An lsx model (``encode``, ``config.input_shape``), already in eval mode on ``device``.
    x : ndarray of shape (n_samples, C, H, W)
        Images in [0, 1]; cast to float32.
    batch_size : int, default=512
    device : str, default="cpu"
        Where the batches are sent; the model must already be there.

    Returns
    -------
    z : ndarray of shape (n_samples, latent_numel), float32

    Raises
    ------
    DataShapeError
        ``x`` does not match the model's input shape or holds NaN/Inf.
    ConfigError
        ``batch_size`` is not a positive int.
    """
    _check_batch_size(batch_size)
    x = check_images(model, x)
    out = np.empty((len(x), math.prod(model.latent_shape)), dtype=np.float32)
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            z = model.encode(_batch(x[sl]).to(device))  # (batch, *latent_shape)
            out[sl] = _to_numpy(z.flatten(1))
    return out


def reconstruct_array(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """``decode(encode(x))`` in batches.

    Parameters
    ----------
    model, x, batch_size, device
        As in :func:`encode_array`.

    Returns
    -------
    x_hat : ndarray of shape (n_samples, C, H, W), float32
    """
    _check_batch_size(batch_size)
    x = check_images(model, x)
    out = np.empty(x.shape, dtype=np.float32)
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            out[sl] = _to_numpy(model.decode(model.encode(_batch(x[sl]).to(device))))
    return out


def embed(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 512, device: str = "cpu"
) -> Embedding:
    """Latent codes and per-sample reconstruction MSE in one pass (encode, then decode, per batch).

    Parameters
    ----------
    model, x, batch_size, device
        As in :func:`encode_array`.

    Returns
    -------
    Embedding
        ``z`` of shape (n_samples, latent_numel) and ``recon_error`` of shape (n_samples,).
    """
    _check_batch_size(batch_size)
    x = check_images(model, x)
    z_out = np.empty((len(x), math.prod(model.latent_shape)), dtype=np.float32)
    err_out = np.empty(len(x), dtype=np.float32)
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            xb = _batch(x[sl]).to(device)  # (batch, C, H, W)
            z = model.encode(xb)  # (batch, *latent_shape)
            x_hat = model.decode(z)
            z_out[sl] = _to_numpy(z.flatten(1))
            err_out[sl] = _to_numpy((x_hat - xb).pow(2).flatten(1).mean(1))
    return Embedding(z=z_out, recon_error=err_out)


def decode_array(
    model: nn.Module, z_flat: np.ndarray, *, batch_size: int = 512, device: str = "cpu"
) -> np.ndarray:
    """Decode latent vectors (flat, as returned by :func:`encode_array`) to images.

    Parameters
    ----------
    model : nn.Module
        As in :func:`encode_array`.
    z_flat : ndarray of shape (n_samples, latent_numel) or (n_samples, *latent_shape)
        A single latent of shape (latent_numel,) is taken as one sample.
    batch_size, device
        As in :func:`encode_array`.

    Returns
    -------
    x_hat : ndarray of shape (n_samples, C, H, W), float32 in [0, 1]
    """
    _check_batch_size(batch_size)
    shape = tuple(model.latent_shape)
    numel = math.prod(shape)
    z = np.asarray(z_flat)
    if z.ndim == 1:
        z = z[None, :]
    if not np.issubdtype(z.dtype, np.number) or z.shape[1:] not in ((numel,), shape):
        raise DataShapeError(
            f"This {model.config.kind} model decodes latents of shape {shape} ({numel} numbers per "
            f"sample); got an array of shape {np.shape(z_flat)} and dtype {z.dtype}. Pass "
            f"(n_samples, {numel}) as returned by encode_array for this checkpoint."
        )
    z = np.ascontiguousarray(z, dtype=np.float32).reshape(len(z), *shape)
    if not np.isfinite(z).all():
        raise DataShapeError("The latents contain NaN or Inf values; decode finite vectors only.")
    out = np.empty((len(z), *model.config.input_shape), dtype=np.float32)
    with torch.inference_mode():
        for sl in _batches(len(z), batch_size):
            out[sl] = _to_numpy(model.decode(_batch(z[sl]).to(device)))
    return out


# ------------------------------------------------------------------------------ posteriors
# Gaussian posteriors q(z|x) of the VAE-family kinds, as arrays (lsx.analysis.posterior and
# lsx.analysis.consistency measure them).


def has_posterior(model: nn.Module) -> bool:
    """True when the model exposes a Gaussian ``posterior(x) -> (mu, logvar)``."""
    return callable(getattr(model, "posterior", None))


def _check_batch(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1; got {batch_size!r}.")


def posterior_arrays(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means and log-variances of images, flattened per sample.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode.
    x : ndarray of shape (n_samples, C, H, W)
    batch_size : int, default=512

    Returns
    -------
    mu : ndarray of shape (n_samples, latent_numel), float32
        ``encode(x)`` (the code itself for a deterministic encoder).
    logvar : ndarray of the same shape, or None for a deterministic encoder
    """
    _check_batch(batch_size)
    x = check_images(model, x)
    mus, lvs = [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = _tensor(x[start : start + batch_size])
            if has_posterior(model):
                mu, lv = model.posterior(xb)
                lvs.append(lv.flatten(1).float().numpy())
            else:
                mu = model.encode(xb)
            mus.append(mu.flatten(1).float().numpy())
    return np.concatenate(mus), (np.concatenate(lvs) if lvs else None)


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A batch as a tensor; copies read-only arrays (lsx.data returns such arrays)."""
    return torch.from_numpy(a if a.flags.writeable else np.array(a))


def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2 or not np.isfinite(a).all():
        raise DataShapeError(
            f"{name} must be a finite array of shape (n_samples >= 2, latent_dim); got shape "
            f"{a.shape}. Encode at least two images with posterior_arrays first."
        )
    return a
