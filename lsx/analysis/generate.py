"""Generating from a latent space: decode anywhere on a 2-D map, traversals, interpolations,
samples and attribute vectors.

Pure functions: arrays (or a model plus arrays) in, arrays or small frozen dataclasses out; every
seed is an argument. Decoding itself is :func:`lsx.analysis.embedding.decode_array`; the
functions here only make the latent vectors to decode.

Inverse projection (a 2-D map position -> a latent vector):

- PCA inverts exactly: ``z = mean + coords @ components`` (the point of the PCA plane in latent
  space that projects onto the clicked position).
- UMAP through ``umap.UMAP.inverse_transform`` when a fitted UMAP model is passed.
- Otherwise (t-SNE, tiered or placed maps, UMAP without its fitted model) a local rule: the
  inverse-distance-weighted mean of the latents of the ``k`` nearest map points (lsx rule).

A map position farther from every data point than the 99th percentile of the data's own
nearest-neighbour spacing on the map is labelled an extrapolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from lsx.errors import ConfigError, DataShapeError

MODES = ("linear", "slerp")
DIRECTIONS = ("dims", "pca", "active")
ACTIVE_THRESHOLD = 0.01  # active unit: Cov_x(E[z|x]) > 0.01 (Burda et al. 2016; docs/methods.md)
K_LOCAL = 8  # neighbours of the local inverse rule
EXTRAPOLATION_QUANTILE = 0.99
_EPS = 1e-12
RULE_PCA = "PCA inverse (exact): mean + coordinates x principal directions"
RULE_UMAP = "umap-learn's UMAP.inverse_transform"
RULE_LOCAL = "distance-weighted mean of the latents of the {k} nearest map points (lsx local rule)"


def _as_matrix(a: Any, name: str, cols: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or (cols is not None and a.shape[1] != cols):
        want = f"(n, {cols})" if cols is not None else "(n, d)"
        raise DataShapeError(f"{name} must have shape {want}; got shape {np.shape(a)}.")
    if not np.isfinite(a).all():
        raise DataShapeError(f"{name} contains NaN or Inf values; pass finite numbers only.")
    return a


def check_decodable(model: nn.Module, latent_numel: int | None = None) -> int:
    """Number of latent coordinates the model decodes; a clear error if it cannot decode.

    Parameters
    ----------
    model : nn.Module
        An lsx model (``decode`` and ``latent_shape``).
    latent_numel : int or None
        Columns of the latents at hand; checked against the model's.

    Returns
    -------
    int

    Raises
    ------
    DataShapeError
        No ``decode``/``latent_shape``, or latents with another number of columns.
    """
    shape = getattr(model, "latent_shape", None)
    if not callable(getattr(model, "decode", None)) or shape is None:
        raise DataShapeError(
            f"The model {type(model).__name__} has no decoder-compatible latent (it needs "
            "'decode' and 'latent_shape'); pick a run of an lsx autoencoder kind."
        )
    numel = int(math.prod(shape))
    if latent_numel is not None and int(latent_numel) != numel:
        raise DataShapeError(
            f"This model decodes latents of {numel} numbers; got latents of {latent_numel}. "
            "Encode the data with this run's model."
        )
    return numel


# ------------------------------------------------------------------------------ inverse projection


@dataclass(frozen=True, eq=False)
class InverseProjection:
    """Latent vectors for 2-D map positions, how they were made, and how far from data.

    Attributes
    ----------
    z : ndarray of shape (n_points, latent_numel)
    rule : str
        The rule used, as shown beside the decoded image.
    distance : ndarray of shape (n_points,)
        Map distance to the nearest data point.
    extrapolated : ndarray of shape (n_points,), bool
        ``distance`` above ``threshold``.
    threshold : float
        The 99th percentile of the data's nearest-neighbour spacing on the map.
    """

    z: np.ndarray
    rule: str
    distance: np.ndarray
    extrapolated: np.ndarray
    threshold: float


def pca_basis(z: np.ndarray, n_components: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and principal directions of ``z``, fitted exactly as the PCA map is.

    Returns
    -------
    mean : ndarray of shape (latent_numel,)
    components : ndarray of shape (n_components, latent_numel)
        Rows beyond the latent's rank are zero (the map's zero coordinates).
    """
    from sklearn.decomposition import PCA

    z = _as_matrix(z, "z").astype(np.float32)  # the map is fitted on float32 latents
    k = min(int(n_components), z.shape[1], z.shape[0])
    pca = PCA(n_components=k, random_state=seed).fit(z)
    comps = np.zeros((int(n_components), z.shape[1]))
    comps[:k] = pca.components_
    return pca.mean_.astype(np.float64), comps


def _spacing(coords: np.ndarray, seed: int = 0, cap: int = 20_000) -> float:
    """99th percentile of nearest-neighbour distances on the map (a seeded sample above cap)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(coords)
    pick = coords
    if len(coords) > cap:
        pick = coords[np.random.default_rng(seed).choice(len(coords), cap, replace=False)]
    d, _ = tree.query(pick, k=2)
    return float(np.quantile(d[:, 1], EXTRAPOLATION_QUANTILE)) if len(coords) > 1 else 0.0


def inverse_project(
    points: np.ndarray,
    coords: np.ndarray,
    z: np.ndarray,
    method: str = "local",
    *,
    k: int = K_LOCAL,
    basis: tuple[np.ndarray, np.ndarray] | None = None,
    umap_model: Any = None,
    spacing: float | None = None,
) -> InverseProjection:
    """Latent vectors for positions on a 2-D (or 3-D) map of ``z``.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_components)
        Map positions to invert.
    coords : ndarray of shape (n_samples, n_components)
        The map coordinates of ``z``.
    z : ndarray of shape (n_samples, latent_numel)
    method : {"pca", "umap", "local"}, default="local"
        ``"pca"``: exact inverse (``basis`` from :func:`pca_basis`, fitted here if None);
        ``"umap"``: ``umap_model.inverse_transform`` (falls back to the local rule without a
        model); anything else (``"tsne"``, ``"local"``, tiered/placed maps): the local rule.
    k : int, default=8
        Neighbours of the local rule.
    spacing : float or None
        Extrapolation threshold; computed from ``coords`` if None.

    Returns
    -------
    InverseProjection
    """
    coords = _as_matrix(coords, "coords")
    p = _as_matrix(points, "points", coords.shape[1])
    z = _as_matrix(z, "z")
    if len(coords) != len(z) or len(z) == 0:
        raise DataShapeError(f"coords has {len(coords)} rows but z {len(z)}; pass one per sample.")
    from scipy.spatial import cKDTree

    tree = cKDTree(coords)
    threshold = _spacing(coords) if spacing is None else float(spacing)
    if method == "pca":
        mean, comps = basis if basis is not None else pca_basis(z, coords.shape[1])
        out, rule = mean + p @ comps[: p.shape[1]], RULE_PCA
    elif method == "umap" and umap_model is not None:
        out, rule = np.asarray(umap_model.inverse_transform(p), dtype=np.float64), RULE_UMAP
    else:
        kk = max(1, min(int(k), len(z)))
        d, idx = tree.query(p, k=kk)
        d, idx = d.reshape(len(p), kk), idx.reshape(len(p), kk)
        w = 1.0 / (d + _EPS)
        w /= w.sum(axis=1, keepdims=True)
        out, rule = np.einsum("nk,nkd->nd", w, z[idx]), RULE_LOCAL.format(k=kk)
    dist = tree.query(p, k=1)[0].reshape(len(p))
    return InverseProjection(out, rule, dist, dist > threshold, threshold)


def forward_project(
    z_new: np.ndarray,
    z: np.ndarray,
    coords: np.ndarray,
    method: str = "local",
    *,
    basis: tuple[np.ndarray, np.ndarray] | None = None,
    k: int = 15,
) -> np.ndarray:
    """Map positions of new latents (e.g. an interpolation path) on the map of ``z``.

    PCA: the fitted projection (``(z_new - mean) @ components.T``); otherwise the placement rule
    of the map tiers (mean map position of the k nearest latents).

    Returns
    -------
    ndarray of shape (n_new, coords.shape[1])
    """
    z_new = _as_matrix(z_new, "z_new")
    coords = _as_matrix(coords, "coords")
    if method == "pca":
        mean, comps = basis if basis is not None else pca_basis(z, coords.shape[1])
        return (z_new - mean) @ comps[: coords.shape[1]].T
    from lsx.analysis.cluster_space import place_by_neighbours

    return place_by_neighbours(z_new, _as_matrix(z, "z"), coords, k=k)


# ------------------------------------------------------------------------------ paths


def interpolate(
    z_a: np.ndarray, z_b: np.ndarray, steps: int = 8, mode: str = "linear"
) -> np.ndarray:
    """Latent path from ``z_a`` to ``z_b`` (both ends included).

    Parameters
    ----------
    z_a, z_b : ndarray of shape (latent_numel,)
    steps : int, default=8
        Number of vectors on the path (>= 2).
    mode : {"linear", "slerp"}
        ``slerp``: spherical interpolation about the origin (Shoemake 1985; White 2016 for
        generative models): the angle moves linearly, the norm linearly from ``|z_a|`` to
        ``|z_b|``; equal norms stay on the great circle.

    Returns
    -------
    ndarray of shape (steps, latent_numel)

    Raises
    ------
    ConfigError
        ``steps`` < 2, unknown mode, the same point twice, or slerp through the origin.
    """
    if mode not in MODES:
        raise ConfigError(f"Unknown interpolation mode {mode!r}; use one of {MODES}.")
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 2:
        raise ConfigError(f"steps must be an int >= 2 (both ends included); got {steps!r}.")
    a, b = _as_matrix(z_a, "z_a")[0], _as_matrix(z_b, "z_b")[0]
    if a.shape != b.shape:
        raise DataShapeError(f"z_a has {a.size} numbers and z_b {b.size}; pass two latents.")
    if np.allclose(a, b, rtol=0, atol=1e-9):
        raise ConfigError(
            "Interpolation between a point and itself: both ends are the same latent vector. "
            "Pick two different samples."
        )
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    if mode == "linear":
        return (1 - t) * a + t * b
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < _EPS or nb < _EPS:
        raise ConfigError("slerp needs two non-zero latents (an end is the origin); use linear.")
    ua, ub = a / na, b / nb
    omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6:  # same direction: the great circle is a point, only the norm moves
        dirs = np.repeat(ua[None, :], len(t), axis=0)
    elif math.pi - omega < 1e-6:
        raise ConfigError("slerp between opposite directions is undefined; use linear.")
    else:
        dirs = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / math.sin(omega)
    return dirs * ((1 - t) * na + t * nb)


def traverse(z: np.ndarray, directions: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """A traversal grid: ``z + scale * direction`` for every direction (row) and scale (column).

    Parameters
    ----------
    z : ndarray of shape (latent_numel,)
    directions : ndarray of shape (n_directions, latent_numel)
        One step per unit of scale (e.g. one standard deviation along a dimension).
    scales : ndarray of shape (n_scales,)

    Returns
    -------
    ndarray of shape (n_directions, n_scales, latent_numel)
    """
    z0 = _as_matrix(z, "z")[0]
    d = _as_matrix(directions, "directions", z0.size)
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if not np.isfinite(s).all() or s.size == 0:
        raise ConfigError(f"scales must be finite numbers; got {np.asarray(scales)!r}.")
    return z0[None, None, :] + s[None, :, None] * d[:, None, :]


def traversal_directions(
    z_data: np.ndarray, kind: str = "dims", dims: list[int] | None = None, n: int = 8
) -> tuple[np.ndarray, list[str]]:
    """Directions of a traversal, each scaled to one standard deviation of the data along it.

    Parameters
    ----------
    z_data : ndarray of shape (n_samples, latent_numel)
        The latents whose spread sets the step.
    kind : {"dims", "pca", "active"}
        ``dims``: latent dimensions (``dims``, or the first ``n``); ``pca``: the first ``n``
        principal directions; ``active``: the dimensions with variance > 0.01 (active units of a
        VAE's posterior means), most active first, at most ``n``.

    Returns
    -------
    directions : ndarray of shape (n_directions, latent_numel)
    names : list of str
        One row label per direction (``"z[3]"``, ``"PC 1"``).

    Raises
    ------
    ConfigError
        A dimension index out of range, an unknown kind, or no active unit.
    """
    z = _as_matrix(z_data, "z_data")
    dim = z.shape[1]
    std = z.std(axis=0)
    if kind == "dims":
        chosen = list(range(min(n, dim))) if dims is None else [int(i) for i in dims]
        bad = [i for i in chosen if not 0 <= i < dim]
        if bad or not chosen:
            raise ConfigError(
                f"Latent dimension(s) {bad or chosen} out of range; this latent has dimensions "
                f"0..{dim - 1}."
            )
        out = np.zeros((len(chosen), dim))
        out[np.arange(len(chosen)), chosen] = std[chosen]
        return out, [f"z[{i}]" for i in chosen]
    if kind == "pca":
        mean, comps = pca_basis(z, min(n, dim, len(z)))
        spread = ((z - mean) @ comps.T).std(axis=0)
        return comps * spread[:, None], [f"PC {i + 1}" for i in range(len(comps))]
    if kind == "active":
        var = z.var(axis=0)
        order = [int(i) for i in np.argsort(-var, kind="stable") if var[i] > ACTIVE_THRESHOLD]
        if not order:
            raise ConfigError(
                f"No active unit: every latent dimension varies less than {ACTIVE_THRESHOLD} "
                "over the data (posterior collapse?). Traverse 'dims' or 'pca' instead."
            )
        return traversal_directions(z, "dims", order[:n])
    raise ConfigError(f"Unknown traversal kind {kind!r}; use one of {DIRECTIONS}.")


# ------------------------------------------------------------------------------ sampling


@dataclass(frozen=True, eq=False)
class Samples:
    """Sampled latents and the rule that made them (shown in the app)."""

    z: np.ndarray  # (n, latent_numel)
    rule: str


def sample_latents(
    model: nn.Module,
    n: int,
    seed: int = 0,
    *,
    z_fit: np.ndarray | None = None,
    sphere: tuple[np.ndarray, float, int, int] | None = None,
) -> Samples:
    """Latents to decode: from the prior, inside a class sphere, or from a fitted Gaussian.

    Parameters
    ----------
    model : nn.Module
        Its kind decides the rule: a posterior (``vae``, ``iwae``) samples the N(0, I) prior;
        otherwise a Gaussian (mean and full covariance) fitted to ``z_fit``.
    n : int
        Number of samples (>= 1).
    seed : int
    z_fit : ndarray of shape (n_samples, latent_numel) or None
        Training latents (or one class's, for ``sphere``); needed unless the model has a prior.
    sphere : (centre, radius, lo, hi) or None
        ``sae``: columns ``lo:hi`` are drawn uniformly inside the ball (centre, radius); the
        other columns from the Gaussian of ``z_fit``.

    Returns
    -------
    Samples
    """
    from lsx.models import MODELS

    numel = check_decodable(model)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n must be an int >= 1 (samples to draw); got {n!r}.")
    rng = np.random.default_rng(seed)
    spec = MODELS.get(getattr(getattr(model, "config", None), "kind", ""))
    if spec is not None and spec.has_posterior and sphere is None:
        return Samples(rng.standard_normal((int(n), numel)), "the prior N(0, I)")
    if z_fit is None or len(z_fit) < 2:
        raise ConfigError("Sampling without a prior needs z_fit: at least 2 training latents.")
    zf = _as_matrix(z_fit, "z_fit", numel)
    cov = np.cov(zf, rowvar=False).reshape(numel, numel) + 1e-9 * np.eye(numel)
    z = rng.multivariate_normal(zf.mean(axis=0), cov, size=int(n), method="eigh")
    if sphere is None:
        return Samples(z, f"a Gaussian fitted to {len(zf):,} training latents (mean, covariance)")
    centre, radius, lo, hi = sphere
    centre = np.asarray(centre, dtype=np.float64).reshape(-1)
    if hi - lo != centre.size or not 0 <= lo < hi <= numel:
        raise DataShapeError(f"The sphere's columns {lo}:{hi} do not fit {centre.size} numbers.")
    u = rng.standard_normal((int(n), centre.size))
    u /= np.linalg.norm(u, axis=1, keepdims=True) + _EPS
    r = float(radius) * rng.random(int(n)) ** (1.0 / centre.size)  # uniform in the ball
    z[:, lo:hi] = centre + u * r[:, None]
    return Samples(z, f"uniform inside the class sphere (radius {float(radius):.3g})")


def attribute_vector(z: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """``mean(z[A]) - mean(z[B])``: the latent-vector edit from B towards A.

    Parameters
    ----------
    z : ndarray of shape (n_samples, latent_numel)
    mask_a, mask_b : ndarray of shape (n_samples,) bool, or index arrays

    Returns
    -------
    ndarray of shape (latent_numel,)

    Raises
    ------
    ConfigError
        An empty selection.
    """
    z = _as_matrix(z, "z")
    a, b = z[np.asarray(mask_a)], z[np.asarray(mask_b)]
    if len(a) == 0 or len(b) == 0:
        raise ConfigError(
            f"An attribute vector needs two non-empty selections; got {len(a)} points in A and "
            f"{len(b)} in B. Pick a class or a tag with points for both."
        )
    return a.mean(axis=0) - b.mean(axis=0)
