"""Hilbert view of the covariance factors (step 4 of the pipeline of
:mod:`lsx.analysis.manifold`): the isometric vectorisation of symmetric matrices, the
log-Euclidean map of SPD factors and :func:`hilbert_map`, which also maps rank-deficient (SPSD)
ones.
"""

from __future__ import annotations

import math

import numpy as np

from lsx.analysis.manifold.factors import mode_covariances, rank_tolerance
from lsx.analysis.manifold.settings import SPSD_MAPS as SPSD_MAPS
from lsx.analysis.manifold.settings import SweepConfig
from lsx.errors import ConfigError, DataShapeError

SQRT2 = math.sqrt(2.0)


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

    ``range_log`` (default, lsx interpretation of docs/methods.md): with ``U`` the eigenvectors of
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
