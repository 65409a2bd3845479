"""Analyses for any checkpoint, vector latents too: :func:`interpolation_profile`
(smoothness along a decoded linear path) and :func:`global_descriptors` (effective rank,
participation ratio, intrinsic dimension, trustworthiness of a 2-D projection).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.analysis.manifold.factors import rank_triples
from lsx.analysis.manifold.sweeps import _check_model, _clean_batch, _encode, _one_blas_thread
from lsx.errors import ConfigError, DataShapeError

# ------------------------------------------------------------------------------ paths


@dataclass(frozen=True, eq=False)
class PathProfile:
    """Smoothness of the decoder along a straight latent path (docs/methods.md, lsx recipe).

    Attributes
    ----------
    t : ndarray of shape (n_steps + 1,)
    images : ndarray of shape (n_steps + 1, C, H, W)
        Decoded images along the path.
    steps : ndarray of shape (n_steps,)
        Root-mean-square pixel change between consecutive decoded images.
    spike_ratio : float
        ``max(steps) / median(steps)``: 1 for an evenly paced path, large for a jump.
    ranks : ndarray of shape (n_steps + 1, 3) or None
        Rank triple of each latent on the path (None for a vector latent).
    n_rank_changes : int or None
        Steps where the triple changes.
    """

    t: np.ndarray
    images: np.ndarray
    steps: np.ndarray
    spike_ratio: float
    ranks: np.ndarray | None
    n_rank_changes: int | None


def interpolation_profile(
    model: nn.Module,
    x_a: np.ndarray,
    x_b: np.ndarray,
    n_steps: int = 20,
    *,
    centered: bool = True,
    rtol: float | None = None,
    atol: float = 0.0,
    device: str = "cpu",
) -> PathProfile:
    """Decode ``z(t) = (1 - t) z_a + t z_b`` and measure the step profile and rank triples.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode.
    x_a, x_b : ndarray of shape (C, H, W)
        The two end images (encoded; a VAE's posterior mean).
    n_steps : int
        Steps along the path (``n_steps + 1`` points), 2 to 200.
    centered, rtol, atol
        As in :class:`SweepConfig`.
    device : str

    Returns
    -------
    PathProfile
    """
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or not 2 <= n_steps <= 200:
        raise ConfigError(f"n_steps must be an int in [2, 200]; got {n_steps!r}.")
    shape = _check_model(model)
    pair = _clean_batch(
        np.stack([np.asarray(x_a), np.asarray(x_b)]), slice(0, 2), model.config.input_shape
    )
    z_a, z_b = _encode(model, pair, device)
    t = np.linspace(0.0, 1.0, n_steps + 1)
    z = ((1.0 - t)[:, None] * z_a.reshape(1, -1) + t[:, None] * z_b.reshape(1, -1)).astype(
        np.float32
    )
    z = z.reshape(len(t), *shape)
    with torch.inference_mode():
        images = model.decode(torch.from_numpy(z).to(device)).to("cpu", torch.float32).numpy()
    steps = np.sqrt(((images[1:] - images[:-1]) ** 2).reshape(n_steps, -1).mean(axis=1))
    median = float(np.median(steps))
    spike = float(steps.max() / median) if median > 0 else (1.0 if steps.max() == 0 else math.inf)
    ranks = rank_triples(z, centered, rtol, atol) if len(shape) == 3 else None
    changes = int((ranks[1:] != ranks[:-1]).any(axis=1).sum()) if ranks is not None else None
    return PathProfile(t, images, steps, spike, ranks, changes)


# ------------------------------------------------------------------------------ global descriptors


def _flat_latents(z: np.ndarray, min_rows: int = 3) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim < 2 or len(z) < min_rows or not np.issubdtype(z.dtype, np.number):
        raise DataShapeError(
            f"Expected latents of shape (n_samples >= {min_rows}, ...); got {z.shape} ({z.dtype})."
        )
    z = z.reshape(len(z), -1).astype(np.float64)
    if not np.isfinite(z).all():
        raise DataShapeError("The latents contain NaN or Inf values.")
    return z


def covariance_spectrum(z: np.ndarray) -> np.ndarray:
    """Eigenvalues of the sample covariance of latents (descending), via an SVD.

    Parameters
    ----------
    z : ndarray of shape (n_samples, ...)
        Flattened per sample.

    Returns
    -------
    ndarray of shape (min(n_samples, latent_numel),)
    """
    z = _flat_latents(z, 2)
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
    return s**2 / (len(z) - 1)


def effective_rank(eigvals: np.ndarray) -> float:
    """Roy & Vetterli (2007) effective rank ``exp(H(p))``, ``p = lambda / sum(lambda)``."""
    lam = np.clip(np.asarray(eigvals, dtype=np.float64), 0.0, None)
    if lam.sum() <= 0:
        return 0.0
    p = lam[lam > 0] / lam.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def participation_ratio(eigvals: np.ndarray) -> float:
    """``(sum lambda)^2 / sum lambda^2``: how many directions carry the variance."""
    lam = np.clip(np.asarray(eigvals, dtype=np.float64), 0.0, None)
    return float(lam.sum() ** 2 / (lam**2).sum()) if (lam**2).sum() > 0 else 0.0


def _neighbour_distances(z: np.ndarray, k: int) -> np.ndarray:
    from lsx.analysis.knn import build_index

    z = np.unique(z, axis=0)  # duplicates give zero distances and infinite log-ratios
    if len(z) <= k:
        raise DataShapeError(
            f"Need more than {k} distinct latents for {k} neighbours; got {len(z)}."
        )
    _, dist = build_index(z).query(z, k + 1)
    return dist[:, 1:]  # (n, k), nearest first, self excluded (rows unique)


def intrinsic_dimension_mle(z: np.ndarray, k: int = 10) -> float:
    """Levina & Bickel (2005) maximum-likelihood intrinsic dimension with ``k`` neighbours,
    averaged over points as MacKay & Ghahramani (2005) suggest (mean of the inverses)."""
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an int >= 2; got {k!r}.")
    d = _neighbour_distances(_flat_latents(z), k)
    inv = np.log(d[:, -1:] / d[:, :-1]).sum(axis=1) / (k - 1)  # 1 / m_k(x) per point
    return float(1.0 / inv.mean())


def intrinsic_dimension_twonn(z: np.ndarray) -> float:
    """TwoNN (Facco et al. 2017): ``mu = r2 / r1`` is Pareto-distributed with shape d; the
    maximum-likelihood estimate is ``n / sum(log mu)``."""
    d = _neighbour_distances(_flat_latents(z), 2)
    return float(len(d) / np.log(d[:, 1] / d[:, 0]).sum())


def trustworthiness_2d(
    z: np.ndarray, coords: np.ndarray | None = None, n_neighbors: int = 10
) -> float:
    """Trustworthiness (Venna & Kaski 2001) of a 2-D projection of the latents (PCA when
    ``coords`` is None): 1 when no point gets neighbours in 2-D it did not have in the latent."""
    from sklearn.manifold import trustworthiness

    z = _flat_latents(z)
    if coords is None:
        from sklearn.decomposition import PCA

        coords = PCA(n_components=min(2, z.shape[1], len(z))).fit_transform(z)
    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) != len(z):
        raise DataShapeError(f"{len(coords)} projected points for {len(z)} latents.")
    k = min(n_neighbors, (len(z) - 1) // 2)
    return float(trustworthiness(z, coords, n_neighbors=max(k, 1)))


@dataclass(frozen=True)
class GlobalDescriptors:
    """Shape of the latent cloud, for any checkpoint (vector or spatial latents)."""

    n_samples: int
    latent_numel: int
    effective_rank: float
    participation_ratio: float
    id_mle: float
    id_twonn: float
    trustworthiness: float
    n_neighbors: int

    def as_row(self, name: str) -> dict[str, Any]:
        row: dict[str, Any] = {"model": name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            row[f.name] = round(value, 3) if isinstance(value, float) else value
        return row


def global_descriptors(
    z: np.ndarray, *, seed: int = 0, max_samples: int = 2000, n_neighbors: int = 10
) -> GlobalDescriptors:
    """Effective rank, participation ratio, intrinsic dimension and 2-D trustworthiness.

    Parameters
    ----------
    z : ndarray of shape (n_samples, ...)
        Latents (flattened per sample).
    seed : int
        Seeds the subsample when ``n_samples > max_samples``.
    max_samples : int
        Every descriptor uses at most this many latents (kNN and trustworthiness are quadratic).
    n_neighbors : int
        For the MLE estimate and trustworthiness.

    Returns
    -------
    GlobalDescriptors
    """
    z = _flat_latents(z, n_neighbors + 2)
    if len(z) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(z), max_samples, replace=False))
        z = z[keep]
    with _one_blas_thread():
        lam = covariance_spectrum(z)
        return GlobalDescriptors(
            n_samples=len(z),
            latent_numel=z.shape[1],
            effective_rank=effective_rank(lam),
            participation_ratio=participation_ratio(lam),
            id_mle=intrinsic_dimension_mle(z, n_neighbors),
            id_twonn=intrinsic_dimension_twonn(z),
            trustworthiness=trustworthiness_2d(z, n_neighbors=n_neighbors),
            n_neighbors=n_neighbors,
        )
