"""Latent-manifold diagnostics of autoencoders under input perturbation (papers.md section 4, A.4).

Shrivastava, Rameshan & Agnihotri (2025), "Latent space characterization of autoencoder variants"
(arXiv 2412.04755): unfold each encoded latent tensor along its three modes, take one covariance
matrix per unfolding, and read the ranks of the three matrices as the stratum of the point; CAE and
DAE ranks vary with input noise (a stratified latent manifold), the VAE's stay put (one smooth
product manifold SPD x SPD x SPSD). The paper's published details are thin: every choice marked
**lsx interpretation** below is ours (papers.md 4.3 tags them [INF]), not the paper's.

Pipeline (one pass over the images, in batches; see :func:`sweep`):

1. perturb every image at every level (Gaussian noise, blur or occlusion; seeded per image, the
   same noise draw at every level: common random numbers, so a sample's path is smooth in sigma);
2. encode (a VAE's latent is its posterior mean) -> tensors ``(C, h, w)``;
3. unfold along the three modes, covariance per unfolding (:func:`mode_covariances`), eigenvalues
   (:func:`spectra`), numerical ranks (:func:`numerical_rank`) -> one rank triple per image;
4. map the three factors into a Hilbert space (:func:`hilbert_map`) and, per level, find the
   principal subspace of the mapped points; compare it with the clean one (principal angles,
   Grassmann distance);
5. summaries: strata per level (:func:`strata`), a plain-language :func:`verdict`.

Plus, for any checkpoint (vector latents too): :func:`interpolation_profile` (smoothness along a
decoded linear path) and :func:`global_descriptors` (effective rank, participation ratio,
intrinsic dimension, trustworthiness of a 2-D projection).

Pure functions: a model plus arrays in, arrays and small frozen dataclasses out; seeds are
arguments; the model is never mutated (it must already be in eval mode).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.config import check_choice, check_float, check_int
from lsx.errors import ConfigError, DataShapeError

FLOAT32_EPS = float(np.finfo(np.float32).eps)
SQRT2 = math.sqrt(2.0)
MODES = ("channel", "height", "width")  # mode-1, mode-2, mode-3 of a (C, h, w) latent tensor
SPD, SPSD = "SPD", "SPSD"  # full rank / rank-deficient symmetric positive semi-definite
SPSD_MAPS = ("range_log", "regularized")
MAX_LEVELS = 20
LOG_FLOOR = -16.0  # log10 of a normalised eigenvalue below 1e-16 is shown as -16


@dataclass(frozen=True)
class PerturbationSpec:
    """One kind of input perturbation: what its level means and its range."""

    unit: str  # what a level is
    max_level: float
    default_levels: tuple[float, ...]
    summary: str


PERTURBATIONS: Mapping[str, PerturbationSpec] = MappingProxyType(
    {
        "gaussian": PerturbationSpec(
            "standard deviation of additive Gaussian noise (images in [0, 1], clipped back)",
            1.0,
            (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),  # papers.md 4.3 [INF]; the paper's levels: NOT FOUND
            "x + level * N(0, 1), clipped to [0, 1]",
        ),
        "blur": PerturbationSpec(
            "standard deviation of a Gaussian blur in pixels",
            8.0,
            (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
            "Gaussian blur of each channel (scipy.ndimage, edges repeated)",
        ),
        "occlusion": PerturbationSpec(
            "side of a square patch set to 0, as a fraction of the image side",
            1.0,
            (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
            "a square of side level * min(H, W) set to 0 at a random place per image",
        ),
    }
)


# ------------------------------------------------------------------------------ configuration


def check_levels(
    levels: Sequence[float] | None, perturbation: str = "gaussian"
) -> tuple[float, ...]:
    """Validated, sorted perturbation levels that always include the clean level 0.

    Parameters
    ----------
    levels : sequence of float or None
        None gives the perturbation's default levels.
    perturbation : {"gaussian", "blur", "occlusion"}

    Returns
    -------
    tuple of float
        Sorted, without duplicates, starting at 0.0 (the clean reference every comparison uses).

    Raises
    ------
    ConfigError
        Unknown perturbation; no levels, too many, non-numbers, or levels out of range.
    """
    spec = perturbation_spec(perturbation)
    if levels is None:
        return spec.default_levels
    try:
        values = [float(v) for v in levels]
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"Perturbation levels must be a list of numbers; got {levels!r}. "
            f"Example: {list(spec.default_levels)}."
        ) from err
    if not values or len(values) > MAX_LEVELS:
        raise ConfigError(
            f"Give between 1 and {MAX_LEVELS} perturbation levels; got {len(values)}. "
            f"Example: {list(spec.default_levels)}."
        )
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= spec.max_level)]
    if bad:
        raise ConfigError(
            f"Perturbation level(s) {bad} out of range for {perturbation!r}: a level is the "
            f"{spec.unit}, in [0, {spec.max_level:g}]. Got {values}; the default is "
            f"{list(spec.default_levels)}."
        )
    return tuple(sorted(set(values) | {0.0}))


def perturbation_spec(perturbation: str) -> PerturbationSpec:
    """The :data:`PERTURBATIONS` entry; ConfigError naming the known ones otherwise."""
    if perturbation not in PERTURBATIONS:
        raise ConfigError(
            f"Unknown perturbation {perturbation!r}; use one of {', '.join(PERTURBATIONS)}."
        )
    return PERTURBATIONS[perturbation]


@dataclass(frozen=True)
class SweepConfig:
    """Settings of a perturbation sweep. Defaults are lsx interpretations (papers.md 4.3).

    Attributes
    ----------
    perturbation : {"gaussian", "blur", "occlusion"}
    levels : tuple of float or None
        None: the perturbation's default levels; 0 is always added (see :func:`check_levels`).
    seed : int
        Seeds the noise (per image: ``default_rng([seed, image_index])``).
    centered : bool
        Centre each unfolding's rows before the covariance (the paper's centring is NOT FOUND).
    rtol : float or None
        Rank tolerance relative to the largest eigenvalue of each covariance; None is numpy's
        ``matrix_rank`` rule ``n * eps`` with the eps of float32, the latents' precision.
    atol : float
        Absolute floor of the tolerance: ``tol = max(atol, rtol * lambda_max)``.
    spsd_map : {"range_log", "regularized"}
        Hilbert map of rank-deficient factors (:func:`hilbert_map`); "regularized" is approximate.
    reg : float
        Ridge of the regularised log map, relative to ``trace / n``.
    energy : float
        Share of the variance the principal subspace of each level must hold (its dimension).
    max_components : int
        Principal components tracked per level (streaming PCA); a dimension that needs more
        is reported as capped (a lower bound).
    n_angles : int
        Dimension of the subspaces compared with the clean one (at most the clean dimension
        and ``max_components``).
    batch_size : int
        Images per batch. Memory is bounded by the batch and ``max_components``, never by the
        number of images times levels.
    """

    perturbation: str = "gaussian"
    levels: tuple[float, ...] | None = None
    seed: int = 0
    centered: bool = True
    rtol: float | None = None
    atol: float = 0.0
    spsd_map: str = "range_log"
    reg: float = 1e-6
    energy: float = 0.9
    max_components: int = 128
    n_angles: int = 8
    batch_size: int = 128

    def __post_init__(self) -> None:
        check_choice(self, "perturbation", tuple(PERTURBATIONS))
        object.__setattr__(self, "levels", check_levels(self.levels, self.perturbation))
        check_int(self, "seed", low=0)
        if not isinstance(self.centered, bool):
            raise ConfigError(f"SweepConfig.centered must be true or false; got {self.centered!r}.")
        if self.rtol is not None:
            check_float(self, "rtol", low=0.0, high=1.0)
        check_float(self, "atol", low=0.0)
        check_choice(self, "spsd_map", SPSD_MAPS)
        check_float(self, "reg", low=0.0, high=1.0, low_open=True)
        check_float(self, "energy", low=0.0, high=1.0, low_open=True)
        check_int(self, "max_components", low=1, high=512)
        check_int(self, "n_angles", low=1, high=512)
        check_int(self, "batch_size", low=1, high=100_000)

    def replace(self, **changes: Any) -> SweepConfig:
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------------------ perturbations


def perturbation_noise(
    shape: tuple[int, ...], index: np.ndarray, perturbation: str, seed: int = 0
) -> np.ndarray | None:
    """The random draw of each image, shared by all levels (common random numbers).

    Parameters
    ----------
    shape : tuple
        ``(C, H, W)`` of one image.
    index : ndarray of shape (n,)
        Global image ids: image ``i`` always gets ``default_rng([seed, i])``, whatever the batch.
    perturbation : {"gaussian", "blur", "occlusion"}
    seed : int

    Returns
    -------
    ndarray or None
        gaussian: ``(n, C, H, W)`` float32 standard normal; occlusion: ``(n, 2)`` patch position
        in [0, 1); blur: None (deterministic).
    """
    perturbation_spec(perturbation)
    if perturbation == "blur":
        return None
    rngs = [np.random.default_rng([int(seed), int(i)]) for i in np.asarray(index)]
    if perturbation == "gaussian":
        out = np.empty((len(rngs), *shape), dtype=np.float32)
        for k, rng in enumerate(rngs):
            out[k] = rng.standard_normal(shape, dtype=np.float32)
        return out
    return np.array([rng.random(2) for rng in rngs]).reshape(len(rngs), 2)


def apply_perturbation(
    x: np.ndarray, perturbation: str, level: float, noise: np.ndarray | None
) -> np.ndarray:
    """Perturb a batch of images at one level (a new array; ``x`` is not changed).

    Parameters
    ----------
    x : ndarray of shape (n, C, H, W)
        Images in [0, 1].
    perturbation : {"gaussian", "blur", "occlusion"}
    level : float
        In the perturbation's range (:data:`PERTURBATIONS`).
    noise : ndarray or None
        From :func:`perturbation_noise` for the same images.

    Returns
    -------
    ndarray of shape (n, C, H, W), float32 in [0, 1]
    """
    x = np.asarray(x, dtype=np.float32)
    check_levels([level], perturbation)
    if level == 0.0:
        return x.copy()
    if perturbation == "gaussian":
        return np.clip(x + np.float32(level) * noise, 0.0, 1.0)
    if perturbation == "blur":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(x, sigma=(0, 0, level, level), mode="nearest").astype(np.float32)
    out = x.copy()  # occlusion
    h, w = x.shape[-2:]
    side = int(round(level * min(h, w)))
    for k, (u, v) in enumerate(noise):
        top, left = int(u * (h - side + 1)), int(v * (w - side + 1))
        out[k, :, top : top + side, left : left + side] = 0.0
    return out


def perturb(
    x: np.ndarray,
    perturbation: str,
    level: float,
    *,
    seed: int = 0,
    index: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`apply_perturbation` with the seeded draw of :func:`perturbation_noise`.

    ``index`` (default ``arange(n)``) names the images, so a batch gets the same noise as the same
    images inside a bigger array.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise DataShapeError(f"perturb expects images of shape (n, C, H, W); got {x.shape}.")
    index = np.arange(len(x)) if index is None else np.asarray(index)
    noise = perturbation_noise(x.shape[1:], index, perturbation, seed)
    return apply_perturbation(x, perturbation, level, noise)


# ------------------------------------------------------------------------------ matrix view


def _as_tensors(z: np.ndarray) -> tuple[np.ndarray, bool]:
    z = np.asarray(z)
    if z.ndim not in (3, 4):
        raise DataShapeError(
            f"Expected a latent tensor (C, h, w) or a batch (n, C, h, w); got shape {z.shape}. "
            "A vector latent has no three modes: train the model with spatial=true (a latent "
            "tensor), or use the analyses that apply to any latent (global descriptors, "
            "interpolation profile)."
        )
    if not np.isfinite(z).all():
        raise DataShapeError("The latent tensors contain NaN or Inf values.")
    return (z[None], True) if z.ndim == 3 else (z, False)


def unfold(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode unfoldings of latent tensors (papers.md A.4).

    Parameters
    ----------
    z : ndarray of shape (C, h, w) or (n, C, h, w)

    Returns
    -------
    m1, m2, m3 : ndarrays of shape (..., C, h*w), (..., h, C*w), (..., w, C*h)
        Row ``i`` of ``m_k`` holds every entry whose mode-k index is ``i``.
    """
    t, single = _as_tensors(z)
    n, c, h, w = t.shape
    mats = (
        t.reshape(n, c, h * w),
        np.moveaxis(t, 2, 1).reshape(n, h, c * w),  # (n, h, C, w)
        np.moveaxis(t, 3, 1).reshape(n, w, c * h),  # (n, w, C, h)
    )
    return tuple(m[0] for m in mats) if single else mats  # type: ignore[return-value]


def mode_covariances(z: np.ndarray, centered: bool = True) -> tuple[np.ndarray, ...]:
    """The three covariance matrices of a latent tensor, one per mode unfolding, in float64.

    ``cov(M) = (M - row means)(M - row means)^T / (ncols - 1)`` when centred, else the second
    moment ``M M^T / ncols`` (the paper's centring is NOT FOUND; lsx interpretation).

    Parameters
    ----------
    z : ndarray of shape (C, h, w) or (n, C, h, w)
    centered : bool

    Returns
    -------
    tuple of 3 ndarrays of shapes (..., C, C), (..., h, h), (..., w, w)
    """
    out = []
    for m in unfold(np.asarray(z, dtype=np.float64)):
        ncols = m.shape[-1]
        if centered:
            m = m - m.mean(axis=-1, keepdims=True)
        denom = max(ncols - 1, 1) if centered else ncols
        out.append(m @ np.swapaxes(m, -1, -2) / denom)
    return tuple(out)


def spectra(cov: np.ndarray) -> np.ndarray:
    """Eigenvalues (= singular values) of symmetric PSD matrices, descending, negatives -> 0.

    Parameters
    ----------
    cov : ndarray of shape (..., n, n)

    Returns
    -------
    ndarray of shape (..., n)
    """
    return np.clip(np.linalg.eigvalsh(cov)[..., ::-1], 0.0, None)


def rank_tolerance(spec: np.ndarray, rtol: float | None = None, atol: float = 0.0) -> np.ndarray:
    """The tolerance rule: ``tol = max(atol, rtol * lambda_max)``, ``rtol = n * eps(float32)``
    when None (numpy's ``matrix_rank`` default with the precision of the float32 latents).

    Parameters
    ----------
    spec : ndarray of shape (..., n)
        Descending eigenvalues (:func:`spectra`).
    rtol, atol : float

    Returns
    -------
    ndarray of shape (...)
    """
    rel = spec.shape[-1] * FLOAT32_EPS if rtol is None else float(rtol)
    return np.maximum(float(atol), rel * spec[..., 0])


def numerical_rank(spec: np.ndarray, rtol: float | None = None, atol: float = 0.0) -> np.ndarray:
    """Number of eigenvalues above :func:`rank_tolerance` (an all-zero matrix has rank 0).

    Parameters
    ----------
    spec : ndarray of shape (..., n)
        Descending eigenvalues.
    rtol, atol : float

    Returns
    -------
    ndarray of shape (...), int
    """
    spec = np.asarray(spec, dtype=np.float64)
    return (spec > rank_tolerance(spec, rtol, atol)[..., None]).sum(axis=-1)


def rank_triples(
    z: np.ndarray, centered: bool = True, rtol: float | None = None, atol: float = 0.0
) -> np.ndarray:
    """Numerical ranks of the three mode covariances of each latent tensor.

    Parameters
    ----------
    z : ndarray of shape (C, h, w) or (n, C, h, w)
    centered, rtol, atol
        As in :class:`SweepConfig`.

    Returns
    -------
    ndarray of shape (3,) or (n, 3), int
    """
    ranks = [numerical_rank(spectra(c), rtol, atol) for c in mode_covariances(z, centered)]
    return np.stack(ranks, axis=-1)


def factor_types(triple: Sequence[int], mode_sizes: Sequence[int]) -> tuple[str, ...]:
    """``"SPD"`` for a full-rank factor, ``"SPSD"`` for a rank-deficient one, per mode."""
    if len(triple) != len(mode_sizes):
        raise DataShapeError(f"{len(triple)} ranks but {len(mode_sizes)} mode sizes.")
    return tuple(SPD if int(r) == int(n) else SPSD for r, n in zip(triple, mode_sizes, strict=True))


# ------------------------------------------------------------------------------ Hilbert view


def sym_vec(s: np.ndarray) -> np.ndarray:
    """Isometric vectorisation of symmetric matrices: diagonal, then sqrt(2) x upper triangle,
    so the Euclidean norm of the vector is the Frobenius norm of the matrix.

    Parameters
    ----------
    s : ndarray of shape (..., n, n)

    Returns
    -------
    ndarray of shape (..., n (n + 1) / 2)
    """
    n = s.shape[-1]
    iu = np.triu_indices(n, 1)
    diag = np.diagonal(s, axis1=-2, axis2=-1)
    return np.concatenate([diag, SQRT2 * s[..., iu[0], iu[1]]], axis=-1)


def log_euclidean(spd: np.ndarray) -> np.ndarray:
    """Matrix logarithm of SPD matrices via eigendecomposition (Arsigny et al. 2006).

    ``X -> log X`` is an isometry from SPD matrices with the log-Euclidean metric onto symmetric
    matrices with the Frobenius norm, a Hilbert space.

    Raises
    ------
    DataShapeError
        A matrix is not positive definite.
    """
    w, v = np.linalg.eigh(np.asarray(spd, dtype=np.float64))
    if not (w > 0).all():
        raise DataShapeError(
            f"log_euclidean needs SPD matrices; the smallest eigenvalue is {w.min():.3g}. Use "
            "hilbert_map, which handles rank-deficient factors."
        )
    return (v * np.log(w)[..., None, :]) @ np.swapaxes(v, -1, -2)


def log_euclidean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|| log A - log B ||_F`` for SPD matrices (broadcast over leading axes)."""
    return np.linalg.norm(log_euclidean(a) - log_euclidean(b), axis=(-2, -1))


def hilbert_map(
    cov: np.ndarray,
    rtol: float | None = None,
    atol: float = 0.0,
    spsd_map: str = "range_log",
    reg: float = 1e-6,
) -> np.ndarray:
    """Map covariance factors into a Hilbert space (vectors; Euclidean distance).

    ``range_log`` (default, lsx interpretation of papers.md 4.3): with ``U`` the eigenvectors of
    the eigenvalues above the rank tolerance and ``Lambda`` those eigenvalues,
    ``X -> (sym_vec(U U^T), sym_vec(U log(Lambda) U^T))``. For a full-rank (SPD) factor
    ``U U^T = I`` is constant and the map is exactly the log-Euclidean isometry, so distances
    between SPD factors are log-Euclidean distances. For rank-r factors it is injective on the
    fixed-rank manifold S+(n, r) and splits like Bonnabel & Sepulchre (2009): a range term
    (chordal Grassmann distance of the ranges) plus a log-Euclidean term on the range; it is an
    isometric embedding of the metric it induces, not of their quotient metric.

    ``regularized``: ``sym_vec(log(X + eps I))`` with ``eps = reg * trace(X) / n``. APPROXIMATE:
    the null directions map to ``log(eps)``, so distances depend on ``reg``.

    Parameters
    ----------
    cov : ndarray of shape (..., n, n)
        Symmetric positive semi-definite matrices.
    rtol, atol : float
        The rank tolerance (:func:`rank_tolerance`), for ``range_log``.
    spsd_map : {"range_log", "regularized"}
    reg : float

    Returns
    -------
    ndarray of shape (..., n (n + 1)) for range_log, (..., n (n + 1) / 2) for regularized
    """
    if spsd_map not in SPSD_MAPS:
        raise ConfigError(f"Unknown spsd_map {spsd_map!r}; use one of {', '.join(SPSD_MAPS)}.")
    w, v = np.linalg.eigh(np.asarray(cov, dtype=np.float64))  # ascending
    return _map_eig(w, v, rtol, atol, spsd_map, reg)


def _map_eig(
    w: np.ndarray, v: np.ndarray, rtol: float | None, atol: float, spsd_map: str, reg: float
) -> np.ndarray:
    """:func:`hilbert_map` from an eigendecomposition (``w`` ascending)."""
    vt = np.swapaxes(v, -1, -2)
    n = w.shape[-1]
    if spsd_map == "regularized":
        trace = np.clip(w, 0.0, None).sum(-1, keepdims=True)
        eps = np.maximum(reg * trace / n, np.finfo(np.float64).tiny)
        log_w = np.log(np.clip(w, 0.0, None) + eps)
        return sym_vec((v * log_w[..., None, :]) @ vt)
    tol = rank_tolerance(w[..., ::-1].clip(0.0, None), rtol, atol)
    keep = w > tol[..., None]
    log_w = np.where(keep, np.log(np.where(keep, w, 1.0)), 0.0)
    proj = (v * keep[..., None, :]) @ vt  # U U^T, projector onto the numerical range
    log_range = (v * log_w[..., None, :]) @ vt  # U log(Lambda) U^T
    return np.concatenate([sym_vec(proj), sym_vec(log_range)], axis=-1)


def hilbert_features(z: np.ndarray, config: SweepConfig) -> np.ndarray:
    """The three factors of each latent tensor mapped by :func:`hilbert_map`, concatenated.

    Parameters
    ----------
    z : ndarray of shape (n, C, h, w)
    config : SweepConfig

    Returns
    -------
    ndarray of shape (n, p)
    """
    parts = [
        hilbert_map(c, config.rtol, config.atol, config.spsd_map, config.reg)
        for c in mode_covariances(z, config.centered)
    ]
    return np.concatenate(parts, axis=-1)


# ------------------------------------------------------------------------------ subspaces


def _orthonormal(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0 or not np.isfinite(a).all():
        raise DataShapeError(f"{name} must be a finite (p, k) basis with k >= 1; got {a.shape}.")
    q, _ = np.linalg.qr(a)
    return q


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles between the column spaces of ``a`` and ``b``, ascending, in radians.

    Cosines for large angles and sines for small ones (Knyazev & Argentati 2002), as
    ``scipy.linalg.subspace_angles`` does (which returns them in descending order).

    Parameters
    ----------
    a : ndarray of shape (p, ka)
    b : ndarray of shape (p, kb)

    Returns
    -------
    ndarray of shape (min(ka, kb),)
    """
    qa, qb = _orthonormal(a, "a"), _orthonormal(b, "b")
    if qa.shape[0] != qb.shape[0]:
        raise DataShapeError(f"Bases live in different spaces: {qa.shape} vs {qb.shape}.")
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    cos = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), -1.0, 1.0)  # descending
    resid = qb - qa @ (qa.T @ qb)
    sin = np.clip(np.linalg.svd(resid, compute_uv=False)[::-1], -1.0, 1.0)  # ascending
    k = qb.shape[1]
    sin = np.concatenate([np.zeros(k - len(sin)), sin]) if len(sin) < k else sin[-k:]
    theta = np.where(cos**2 < 0.5, np.arccos(cos), np.arcsin(sin))
    return np.sort(theta)


def grassmann_distance(angles: np.ndarray) -> float:
    """Geodesic distance on the Grassmannian: the 2-norm of the principal angles."""
    return float(np.linalg.norm(np.asarray(angles, dtype=np.float64)))


def energy_dimension(ratios: np.ndarray, energy: float) -> tuple[int, bool]:
    """Fewest leading components whose variance ratios sum to ``energy``, and whether the
    ratios ran out first (the dimension is then a lower bound, "capped")."""
    ratios = np.asarray(ratios, dtype=np.float64)
    if ratios.size == 0 or not np.isfinite(ratios).all() or ratios.sum() <= 0:
        return 0, False
    hit = np.nonzero(np.cumsum(ratios) >= energy - 1e-12)[0]
    return (int(hit[0]) + 1, False) if hit.size else (len(ratios), True)


def principal_subspace(
    points: np.ndarray, energy: float = 0.95, max_components: int | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Principal subspace of a point cloud (exact PCA via SVD of the centred points).

    Parameters
    ----------
    points : ndarray of shape (n, p)
    energy : float
        Share of the variance the subspace must hold.
    max_components : int or None

    Returns
    -------
    basis : ndarray of shape (p, k)
    k : int
    ratios : ndarray
        Explained variance ratio of each component.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise DataShapeError(f"principal_subspace needs (n >= 2, p) points; got {x.shape}.")
    _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    total = (s**2).sum()
    ratios = s**2 / total if total > 0 else np.zeros_like(s)
    if max_components is not None:
        ratios, vt = ratios[:max_components], vt[:max_components]
    k, _ = energy_dimension(ratios, energy)
    return vt[: max(k, 1)].T, k, ratios


class _StreamingSubspace:
    """Incremental PCA of one level's mapped points, memory ``n_components x n_features``.

    The merge of Ross et al. (2008) that sklearn's IncrementalPCA uses, with the top singular
    vectors of the stacked rows taken from the eigenvectors of their small Gram matrix (the
    stack has ``n_components + batch + 1`` rows and thousands of columns): same ratios and
    components as IncrementalPCA to 1e-13, 5-8x faster (measured, 1,024 x 4,272 points).
    Exact when the points span at most ``n_components`` dimensions.
    """

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components
        self.n = 0
        self.mean: np.ndarray | None = None
        self.scaled: np.ndarray | None = None  # (k, p): singular value x right singular vector
        self.m2 = 0.0  # total sum of squared deviations (all features)

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64)
        nb, mean_b = len(rows), rows.mean(axis=0)
        centred = rows - mean_b
        m2_b = float((centred**2).sum())
        if self.n == 0:
            stack, self.mean, self.m2 = centred, mean_b, m2_b
        else:
            n = self.n + nb
            gap = self.mean - mean_b
            corr = math.sqrt(self.n * nb / n) * gap  # the between-means term of the merge
            stack = np.vstack([self.scaled, centred, corr[None]])
            self.m2 += m2_b + self.n * nb / n * float(gap @ gap)
            self.mean = (self.n * self.mean + nb * mean_b) / n
        self.n += nb
        w, u = np.linalg.eigh(stack @ stack.T)  # ascending
        top = np.argsort(w)[::-1][: self.n_components]
        top = top[w[top] > 1e-12 * max(w.max(), 1e-300)]
        self.scaled = u[:, top].T @ stack

    def result(self, energy: float) -> tuple[np.ndarray, np.ndarray, int, bool, np.ndarray]:
        """basis (p, k), mean (p,), energy dimension, capped, explained variance ratios (k,)"""
        s2 = (self.scaled**2).sum(axis=1)
        ratios = s2 / self.m2 if self.m2 > 0 else np.zeros_like(s2)
        dim, capped = energy_dimension(ratios, energy)
        capped = capped and len(ratios) == self.n_components
        basis = (self.scaled / np.sqrt(np.maximum(s2, 1e-300))[:, None]).T
        return basis, self.mean, dim, capped, ratios


# ------------------------------------------------------------------------------ the sweep


@dataclass(frozen=True, eq=False)
class SubspaceResult:
    """Principal subspaces of the mapped points per level, compared with the clean level.

    Attributes
    ----------
    space : {"hilbert", "latent"}
        "hilbert": the three factors mapped by :func:`hilbert_map`; "latent": a vector latent,
        taken as it is (no matrix factors to map).
    dims : ndarray of shape (n_levels,)
        Components holding ``energy`` of the variance (a lower bound where ``capped``).
    capped : ndarray of shape (n_levels,), bool
    captured : ndarray of shape (n_levels,)
        Share of the variance the tracked components hold.
    k : int
        Dimension compared at every level: ``n_angles``, at most the clean level's ``dims[0]``.
    angles : ndarray of shape (n_levels, k)
        Principal angles (radians, ascending) between the top-k subspaces of each level and of
        the clean level.
    grassmann : ndarray of shape (n_levels,)
    centroid_shift : ndarray of shape (n_levels,)
        Distance between the level's mean mapped point and the clean one.
    ratios : ndarray of shape (n_levels, n_components)
        Explained variance ratios per level.
    """

    space: str
    energy: float
    dims: np.ndarray
    capped: np.ndarray
    captured: np.ndarray
    k: int
    angles: np.ndarray
    grassmann: np.ndarray
    centroid_shift: np.ndarray
    ratios: np.ndarray


@dataclass(frozen=True, eq=False)
class SweepResult:
    """What a perturbation sweep measured (small: no images, no full latents).

    Attributes
    ----------
    config : SweepConfig
    levels : ndarray of shape (n_levels,)
    latent_shape : tuple of int
    n_samples : int
    ranks : ndarray of shape (n_levels, n_samples, 3), int16, or None (vector latent)
    mean_log_spectra : tuple of 3 ndarrays of shape (n_levels, n_mode) or None
        Mean over images of ``log10(lambda_j / lambda_1)`` (floored at -16), per mode.
    spectra : tuple of 3 ndarrays of shape (n_levels, n_samples, n_mode) or None
        Every eigenvalue, only with ``keep_spectra=True`` (to re-rank at other tolerances).
    map_xy : ndarray of shape (n_levels, n_samples, 2), float32
        Latents projected on the first two principal axes of the clean latents.
    displacement : ndarray of shape (n_levels, n_samples), float32
        ``||z_level - z_clean|| / ||z_clean||`` per image.
    subspace : SubspaceResult
    """

    config: SweepConfig
    levels: np.ndarray
    latent_shape: tuple[int, ...]
    n_samples: int
    ranks: np.ndarray | None
    mean_log_spectra: tuple[np.ndarray, ...] | None
    spectra: tuple[np.ndarray, ...] | None
    map_xy: np.ndarray
    displacement: np.ndarray
    subspace: SubspaceResult
    map_axes: tuple[str, str] = ("PC 1", "PC 2")

    @property
    def spatial(self) -> bool:
        return len(self.latent_shape) == 3

    @property
    def mode_sizes(self) -> tuple[int, ...] | None:
        return tuple(self.latent_shape) if self.spatial else None


def _check_model(model: nn.Module) -> tuple[int, ...]:
    shape = tuple(getattr(model, "latent_shape", ()))
    if len(shape) not in (1, 3) or not hasattr(model, "encode"):
        raise DataShapeError(
            f"Expected an lsx model with encode() and a latent_shape of 1 or 3 axes; got "
            f"{type(model).__name__} with latent_shape {shape}."
        )
    return shape


def _batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _encode(model: nn.Module, x: np.ndarray, device: str) -> np.ndarray:
    with torch.inference_mode():
        z = model.encode(torch.from_numpy(np.ascontiguousarray(x)).to(device))
    return z.detach().to("cpu", torch.float32).numpy()


def _clean_batch(x: Any, sl: slice, input_shape: tuple[int, ...]) -> np.ndarray:
    xb = np.array(x[sl], dtype=np.float32)  # a writable copy of one batch (x may be read-only)
    if xb.ndim != 4 or tuple(xb.shape[1:]) != tuple(input_shape):
        raise DataShapeError(
            f"The model expects images of shape (n, {', '.join(map(str, input_shape))}); got a "
            f"batch of shape {xb.shape}. Use the dataset the checkpoint was trained on."
        )
    if not np.isfinite(xb).all():
        raise DataShapeError("The images contain NaN or Inf values; clean the data first.")
    return xb


def _fit_map(model: nn.Module, x: Any, slices: list[slice], device: str) -> Any:
    """2-D PCA of the clean latents, fitted batch by batch (a pre-pass over the clean images)."""
    from sklearn.decomposition import IncrementalPCA

    ipca = IncrementalPCA(n_components=2)
    shape = tuple(model.config.input_shape)
    for sl in slices:
        ipca.partial_fit(
            _encode(model, _clean_batch(x, sl, shape), device).reshape(sl.stop - sl.start, -1)
        )
    return ipca


def sweep(
    model: nn.Module,
    x: Any,
    config: SweepConfig | None = None,
    *,
    device: str = "cpu",
    keep_spectra: bool = False,
) -> SweepResult:
    """Encode every image at every perturbation level and measure the latent manifold.

    Work is batch-major (one batch of clean images, then all its levels), so memory is bounded
    by the batch and a few per-image numbers, never by ``n_images x n_levels`` images or latents;
    ``x`` may be a memory-mapped array. A vector latent gets the analyses that apply to it
    (latent-map trajectory, displacement, principal subspaces of the latents themselves).

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode on ``device`` (a VAE encodes to its posterior mean).
    x : array-like of shape (n_samples, C, H, W)
        Clean images in [0, 1]; at least 3.
    config : SweepConfig or None
    device : str
    keep_spectra : bool
        Keep every eigenvalue (``n_levels x n_samples x (C + h + w)`` floats).

    Returns
    -------
    SweepResult

    Raises
    ------
    DataShapeError
        Images of the wrong shape, NaN/Inf, fewer than 3 images.
    ConfigError
        Bad settings (:class:`SweepConfig`).
    """
    config = SweepConfig() if config is None else config
    latent_shape = _check_model(model)
    n = len(x)
    if n < 3:
        raise DataShapeError(f"A sweep needs at least 3 images; got {n}.")
    acc = _Accumulator(config, latent_shape, n, keep_spectra)
    slices = list(_batch_slices(n, config.batch_size))
    with _one_blas_thread():
        acc.mapper = _fit_map(model, x, slices, device)
        _run(model, x, config, slices, acc, device)
        return acc.result()


def _one_blas_thread() -> Any:
    """Many small LAPACK calls are fastest on one BLAS thread; two threads slowed a batched
    ``eigh`` 40x on the shared 2-core machine (measured; field-notes.md A.4 for torch)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _run(
    model: nn.Module,
    x: Any,
    config: SweepConfig,
    slices: list[slice],
    acc: _Accumulator,
    device: str,
) -> None:
    for sl in slices:
        xb = _clean_batch(x, sl, tuple(model.config.input_shape))
        index = np.arange(sl.start, sl.stop)
        noise = perturbation_noise(xb.shape[1:], index, config.perturbation, config.seed)
        z_clean = None
        for li, level in enumerate(config.levels):
            xp = apply_perturbation(xb, config.perturbation, level, noise)
            z = _encode(model, xp, device)  # (b, *latent_shape)
            z_clean = z if z_clean is None else z_clean
            acc.add(li, sl, z, z_clean)


class _Accumulator:
    """Per-image numbers and per-level running statistics of a sweep (the only state kept)."""

    def __init__(
        self, config: SweepConfig, latent_shape: tuple[int, ...], n: int, keep_spectra: bool
    ) -> None:
        self.config, self.latent_shape, self.n = config, latent_shape, n
        self.spatial = len(latent_shape) == 3
        n_levels = len(config.levels)
        width = int(np.prod(latent_shape))
        if self.spatial:  # length of the Hilbert features of one tensor
            half = config.spsd_map == "regularized"
            width = sum(m * (m + 1) // (2 if half else 1) for m in latent_shape)
        self.n_components = max(1, min(config.max_components, n, width))
        self.subspaces = [_StreamingSubspace(self.n_components) for _ in range(n_levels)]
        self.mapper: Any = None
        self.map_xy = np.empty((n_levels, n, 2), dtype=np.float32)
        self.displacement = np.empty((n_levels, n), dtype=np.float32)
        self.ranks = np.empty((n_levels, n, 3), dtype=np.int16) if self.spatial else None
        sizes = latent_shape if self.spatial else ()
        self.spec_sums = [np.zeros((n_levels, m)) for m in sizes]
        self.kept = [np.empty((n_levels, n, m), np.float32) for m in sizes] if keep_spectra else []

    def add(self, li: int, sl: slice, z: np.ndarray, z_clean: np.ndarray) -> None:
        cfg = self.config
        flat, flat0 = z.reshape(len(z), -1), z_clean.reshape(len(z), -1)
        norm = np.maximum(np.linalg.norm(flat0, axis=1), 1e-12)
        self.displacement[li, sl] = np.linalg.norm(flat - flat0, axis=1) / norm
        self.map_xy[li, sl] = self.mapper.transform(flat)
        if not self.spatial:
            self.subspaces[li].add(flat.astype(np.float64))
            return
        feats = []
        for mi, cov in enumerate(mode_covariances(z, cfg.centered)):
            w, v = np.linalg.eigh(cov)  # ascending; one decomposition for ranks and the map
            spec = np.clip(w[:, ::-1], 0.0, None)  # (b, n_mode), descending
            self.ranks[li, sl, mi] = numerical_rank(spec, cfg.rtol, cfg.atol)
            top = np.maximum(spec[:, :1], np.finfo(np.float64).tiny)
            self.spec_sums[mi][li] += np.log10(np.maximum(spec / top, 10.0**LOG_FLOOR)).sum(0)
            if self.kept:
                self.kept[mi][li, sl] = spec
            feats.append(_map_eig(w, v, cfg.rtol, cfg.atol, cfg.spsd_map, cfg.reg))
        self.subspaces[li].add(np.concatenate(feats, axis=-1))  # (b, p)

    def result(self) -> SweepResult:
        space = "hilbert" if self.spatial else "latent"
        return SweepResult(
            config=self.config,
            levels=np.asarray(self.config.levels, dtype=np.float64),
            latent_shape=self.latent_shape,
            n_samples=self.n,
            ranks=self.ranks,
            mean_log_spectra=tuple(s / self.n for s in self.spec_sums) if self.spatial else None,
            spectra=tuple(self.kept) if self.kept else None,
            map_xy=self.map_xy,
            displacement=self.displacement,
            subspace=_compare_subspaces(
                self.subspaces, self.config.energy, self.config.n_angles, space
            ),
        )


def _compare_subspaces(
    subspaces: list[_StreamingSubspace], energy: float, n_angles: int, space: str
) -> SubspaceResult:
    results = [s.result(energy) for s in subspaces]  # (basis, mean, dim, capped, ratios)
    dims = np.array([r[2] for r in results], dtype=np.int64)
    k = int(min(n_angles, max(dims[0], 1), *(r[0].shape[1] for r in results)))
    width = max(len(r[4]) for r in results)
    ratios = np.zeros((len(results), width))
    for i, r in enumerate(results):
        ratios[i, : len(r[4])] = r[4]
    ref_basis, ref_mean = results[0][0][:, :k], results[0][1]
    angles = np.stack([principal_angles(ref_basis, r[0][:, :k]) for r in results])
    return SubspaceResult(
        space=space,
        energy=energy,
        dims=dims,
        capped=np.array([r[3] for r in results], dtype=bool),
        captured=np.array([float(r[4].sum()) for r in results]),
        k=k,
        angles=angles,
        grassmann=np.array([grassmann_distance(a) for a in angles]),
        centroid_shift=np.array([float(np.linalg.norm(r[1] - ref_mean)) for r in results]),
        ratios=ratios,
    )


# ------------------------------------------------------------------------------ strata


Triple = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class StrataSummary:
    """Rank triples (strata) per perturbation level.

    Attributes
    ----------
    levels : ndarray of shape (n_levels,)
    mode_sizes : tuple of 3 int
        ``(C, h, w)``: a factor is SPD when its rank equals its size.
    counts : tuple of n_levels tuples of (triple, count)
        Most frequent first.
    n_distinct : ndarray of shape (n_levels,)
        Distinct triples per level.
    n_strata : int
        Distinct triples over all levels that hold at least ``min_share`` of the images at some
        level (lsx rule: single outliers are not a stratum).
    n_strata_all : int
        All distinct triples seen.
    mean_ranks : ndarray of shape (n_levels, 3)
    modal : tuple of n_levels triples
    modal_share : ndarray of shape (n_levels,)
    change_rate : ndarray of shape (n_levels,)
        Share of images whose triple differs from their own clean triple.
    """

    levels: np.ndarray
    mode_sizes: tuple[int, ...]
    counts: tuple[tuple[tuple[Triple, int], ...], ...]
    n_distinct: np.ndarray
    n_strata: int
    n_strata_all: int
    mean_ranks: np.ndarray
    modal: tuple[Triple, ...]
    modal_share: np.ndarray
    change_rate: np.ndarray
    min_share: float


def strata(
    ranks: np.ndarray,
    levels: Sequence[float],
    mode_sizes: Sequence[int],
    min_share: float = 0.01,
) -> StrataSummary:
    """Summarise rank triples per level: the paper's smooth-versus-stratified test.

    Parameters
    ----------
    ranks : ndarray of shape (n_levels, n_samples, 3)
        Level 0 (clean) first, as :func:`sweep` returns them.
    levels : sequence of float
    mode_sizes : sequence of 3 int
    min_share : float
        Share of a level's images a triple needs to count as a stratum.

    Returns
    -------
    StrataSummary
    """
    ranks = np.asarray(ranks)
    if (
        ranks.ndim != 3
        or ranks.shape[2] != 3
        or ranks.shape[0] != len(levels)
        or not ranks.shape[1]
    ):
        raise DataShapeError(
            f"ranks must have shape (n_levels={len(levels)}, n_samples >= 1, 3); got {ranks.shape}."
        )
    n = ranks.shape[1]
    counts, seen, significant = [], set(), set()
    for level_ranks in ranks:
        c = Counter(tuple(int(v) for v in row) for row in level_ranks)
        ordered = tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
        counts.append(ordered)
        seen.update(c)
        significant.update(t for t, k in c.items() if k / n >= min_share)
    return StrataSummary(
        levels=np.asarray(levels, dtype=np.float64),
        mode_sizes=tuple(int(m) for m in mode_sizes),
        counts=tuple(counts),
        n_distinct=np.array([len(c) for c in counts]),
        n_strata=len(significant),
        n_strata_all=len(seen),
        mean_ranks=ranks.mean(axis=1),
        modal=tuple(c[0][0] for c in counts),
        modal_share=np.array([c[0][1] / n for c in counts]),
        change_rate=(ranks != ranks[:1]).any(axis=2).mean(axis=1),
        min_share=float(min_share),
    )


def sweep_strata(result: SweepResult, min_share: float = 0.01) -> StrataSummary:
    """:func:`strata` of a sweep; DataShapeError for a vector latent (no rank triples)."""
    if result.ranks is None:
        raise DataShapeError(_VECTOR_NOTE.format(shape=result.latent_shape))
    return strata(result.ranks, result.levels, result.latent_shape, min_share)


_VECTOR_NOTE = (
    "This checkpoint's latent is a vector {shape}, not a tensor (C, h, w): unfoldings, covariance "
    "ranks, strata and the Hilbert map of the factors need a spatial latent (train with "
    "spatial=true). What applies to a vector latent: the noise trajectory on the latent map, the "
    "principal subspaces of the latents themselves, the interpolation profile and the global "
    "descriptors."
)


def vector_latent_note(latent_shape: Sequence[int]) -> str:
    """Which analyses apply to a vector latent, in one paragraph."""
    return _VECTOR_NOTE.format(shape=tuple(latent_shape))


@dataclass(frozen=True)
class Verdict:
    """A computed plain-language reading of one sweep (lsx rule, see :func:`verdict`)."""

    label: str  # "smooth", "stratified" or "vector latent"
    text: str
    n_strata: int
    modal: Triple | None
    factors: tuple[str, ...] | None


def _fmt_level(result_levels: np.ndarray, i: int) -> str:
    return f"{result_levels[i]:g}"


def verdict(result: SweepResult, stable_share: float = 0.9, min_share: float = 0.01) -> Verdict:
    """Smooth or stratified, decided from the rank triples (lsx rule; the paper gives none).

    *Smooth* when the same rank triple is the most frequent at every level and holds at least
    ``stable_share`` of the images at each level; *stratified* otherwise, with the number of
    strata counted as in :func:`strata` (triples holding ``min_share`` of a level's images).

    Parameters
    ----------
    result : SweepResult
    stable_share, min_share : float

    Returns
    -------
    Verdict
    """
    sub = result.subspace
    last = len(result.levels) - 1
    drift = (
        f"principal subspace ({'Hilbert space' if sub.space == 'hilbert' else 'latent space'}, "
        f"k={sub.k}): Grassmann distance {sub.grassmann[last]:.2f} rad from the clean one at "
        f"level {_fmt_level(result.levels, last)}"
    )
    if result.ranks is None:
        disp = float(np.median(result.displacement[last]))
        text = (
            f"vector latent: no rank triples (see the note). Median latent displacement "
            f"{disp:.2f} x |z| at level {_fmt_level(result.levels, last)}; {drift}."
        )
        return Verdict("vector latent", text, 0, None, None)
    s = sweep_strata(result, min_share)
    modal = s.modal[0]
    factors = factor_types(modal, s.mode_sizes)
    kinds = " x ".join(factors)
    stable = len(set(s.modal)) == 1 and bool((s.modal_share >= stable_share).all())
    if stable:
        text = (
            f"ranks stable across noise: smooth. One stratum {modal} = {kinds} holds at least "
            f"{s.modal_share.min():.0%} of the images at every level; {drift}."
        )
        return Verdict("smooth", text, s.n_strata, modal, factors)
    moved = ", ".join(
        f"mode {m + 1} {s.mean_ranks[0, m]:.1f} -> {s.mean_ranks[last, m]:.1f}" for m in range(3)
    )
    text = (
        f"{s.n_strata} strata: stratified. Rank triples change with the perturbation (mean "
        f"ranks {moved}); {s.change_rate[last]:.0%} of the images leave their clean stratum at "
        f"level {_fmt_level(result.levels, last)}; clean modal stratum {modal} = {kinds}; {drift}."
    )
    return Verdict("stratified", text, s.n_strata, modal, factors)


def strata_rows(name: str, result: SweepResult, min_share: float = 0.01) -> list[dict[str, Any]]:
    """The strata/rank table of one sweep, one row per level (empty for a vector latent)."""
    if result.ranks is None:
        return []
    s = sweep_strata(result, min_share)
    rows = []
    for i, level in enumerate(s.levels):
        rows.append(
            {
                "model": name,
                "level": float(level),
                "strata": int(s.n_distinct[i]),
                "modal_triple": str(s.modal[i]),
                "modal_share": round(float(s.modal_share[i]), 3),
                "factors": " x ".join(factor_types(s.modal[i], s.mode_sizes)),
                "mean_r1": round(float(s.mean_ranks[i, 0]), 2),
                "mean_r2": round(float(s.mean_ranks[i, 1]), 2),
                "mean_r3": round(float(s.mean_ranks[i, 2]), 2),
                "changed": round(float(s.change_rate[i]), 3),
            }
        )
    return rows


def subspace_rows(name: str, result: SweepResult) -> list[dict[str, Any]]:
    """The subspace-angle table of one sweep, one row per level."""
    sub = result.subspace
    return [
        {
            "model": name,
            "level": float(level),
            "space": sub.space,
            "dim": int(sub.dims[i]) if not sub.capped[i] else f">={int(sub.dims[i])}",
            "captured": round(float(sub.captured[i]), 3),
            "k": sub.k,
            "mean_angle": round(float(sub.angles[i].mean()), 4),
            "max_angle": round(float(sub.angles[i].max()), 4),
            "grassmann": round(float(sub.grassmann[i]), 4),
            "centroid_shift": round(float(sub.centroid_shift[i]), 4),
        }
        for i, level in enumerate(result.levels)
    ]


# ------------------------------------------------------------------------------ paths


@dataclass(frozen=True, eq=False)
class PathProfile:
    """Smoothness of the decoder along a straight latent path (papers.md 4.3, lsx recipe).

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
