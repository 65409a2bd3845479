"""Matrix view of latent tensors (step 3 of the pipeline of :mod:`lsx.analysis.manifold`):
mode unfoldings (docs/methods.md), one covariance matrix per unfolding, eigenvalue spectra,
numerical ranks (the rank triple of a point) and the SPD / SPSD type of each factor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lsx.errors import DataShapeError

FLOAT32_EPS = float(np.finfo(np.float32).eps)
MODES = ("channel", "height", "width")  # mode-1, mode-2, mode-3 of a (C, h, w) latent tensor
SPD, SPSD = "SPD", "SPSD"  # full rank / rank-deficient symmetric positive semi-definite


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
    """Mode unfoldings of latent tensors (docs/methods.md).

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
