"""Compare two latent spaces of the same samples: neighbourhoods, similarity, alignment, drift.

Pure functions: arrays in, arrays, floats or small frozen dataclasses out. The two latent matrices
may have different widths (two checkpoints of different kinds or latent sizes); row ``i`` of both
must be the same sample.

- :func:`knn_jaccard`: per point, the Jaccard index of its k nearest neighbours in A and in B
  (1 = the same neighbourhood; Emblaze's gained/lost neighbours).
- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al., ICML 2019): invariant to
  orthogonal transforms, isotropic scaling and translation; 1 for the same geometry.
- :func:`procrustes_align`: orthogonal Procrustes with isotropic scale and translation (Schönemann
  1966), used to measure the Procrustes disparity; :func:`align_maps` standardises two 2-D maps
  and rotates B's onto A's, so both keep the same spread (the Compare page's maps).
- :func:`centroid_drift`: per-class centroid displacement after that alignment.
- :func:`align_sequence`: 2-D maps of a sequence of latent snapshots (training epochs), each
  rotated onto the previous one so clusters do not spin or flip between frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsx.errors import ConfigError, DataShapeError


def _as_matrix(z: np.ndarray, name: str) -> np.ndarray:
    """``z`` as a finite float64 (n, d) matrix; a (n, *shape) latent is flattened per row."""
    z = np.asarray(z)
    if z.ndim == 1 or z.ndim == 0:
        raise DataShapeError(f"{name} must have shape (n_samples, latent_dim); got {z.shape}.")
    z = z.reshape(len(z), -1).astype(np.float64)
    if not np.isfinite(z).all():
        raise DataShapeError(f"{name} holds NaN or Inf; encode with a checkpoint that trained.")
    return z


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_matrix(a, "z_a"), _as_matrix(b, "z_b")
    if len(a) != len(b):
        raise DataShapeError(
            f"z_a has {len(a)} rows but z_b has {len(b)}; encode the same samples with both "
            "checkpoints (row i must be the same sample in both)."
        )
    if len(a) < 3:
        raise DataShapeError(f"Comparing latent spaces needs at least 3 samples; got {len(a)}.")
    return a, b


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """Zero columns up to ``width`` (distances between rows are unchanged)."""
    return a if a.shape[1] >= width else np.hstack([a, np.zeros((len(a), width - a.shape[1]))])


# ------------------------------------------------------------------------------ neighbourhoods


def knn_indices(z: np.ndarray, k: int) -> np.ndarray:
    """k nearest neighbours of every row (Euclidean), the row itself excluded.

    Exact up to ``lsx.analysis.knn.EXACT_MAX`` rows, an HNSW index (FAISS) above it.

    Parameters
    ----------
    z : ndarray of shape (n_samples, latent_dim)
    k : int
        1 <= k < n_samples.

    Returns
    -------
    ndarray of shape (n_samples, k), int64
        Neighbour row indices, nearest first.
    """
    from lsx.analysis.knn import build_index

    z = _as_matrix(z, "z")
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or not 1 <= k < len(z):
        raise ConfigError(
            f"k (neighbours per point) must be an int in [1, n_samples - 1 = {len(z) - 1}]; "
            f"got {k!r}."
        )
    return build_index(z).neighbours_of_rows(int(k))


def knn_jaccard(z_a: np.ndarray, z_b: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-point Jaccard index of the k-nearest-neighbour sets in two latent spaces.

    ``J_i = |N_A(i) ∩ N_B(i)| / |N_A(i) ∪ N_B(i)|``, neighbours found exactly in each space.

    Parameters
    ----------
    z_a, z_b : ndarrays of shape (n_samples, d_a) and (n_samples, d_b)
        The same samples, row by row.
    k : int, default=10

    Returns
    -------
    ndarray of shape (n_samples,), float64 in [0, 1]
        1 where the neighbourhood is unchanged; 0 where no neighbour is shared.
    """
    a, b = _pair(z_a, z_b)
    na, nb = knn_indices(a, k), knn_indices(b, k)
    # each set holds distinct rows, so a row index seen twice in both lists is a shared one
    both = np.sort(np.hstack([na, nb]), axis=1)  # (n, 2k)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return shared / (2 * k - shared)


def rank_by_change(jaccard: np.ndarray) -> np.ndarray:
    """Row indices ordered from the most changed neighbourhood (lowest Jaccard) to the least.

    Parameters
    ----------
    jaccard : ndarray of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_samples,), int64
        Ties keep row order (stable sort).
    """
    return np.argsort(np.asarray(jaccard, dtype=np.float64), kind="stable").astype(np.int64)


# ------------------------------------------------------------------------------ similarity


def linear_cka(z_a: np.ndarray, z_b: np.ndarray) -> float:
    """Linear CKA between two representations of the same samples (Kornblith et al., 2019).

    ``CKA = ||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` with column-centred A and B.

    Parameters
    ----------
    z_a, z_b : ndarrays of shape (n_samples, d_a) and (n_samples, d_b)

    Returns
    -------
    float in [0, 1]
        1 when B is A up to an orthogonal transform, isotropic scaling and translation; near 0
        for independent representations. 0 when either matrix is constant.
    """
    a, b = _pair(z_a, z_b)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    denom = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    if denom == 0.0:
        return 0.0
    return float(min(1.0, np.linalg.norm(b.T @ a) ** 2 / denom))


# ------------------------------------------------------------------------------ alignment


@dataclass(frozen=True, eq=False)
class ProcrustesFit:
    """``aligned = scale * (source - source_mean) @ rotation + target_mean``.

    Attributes
    ----------
    aligned : ndarray of shape (n_samples, width)
        The source in the target's frame; ``width = max(d_source, d_target)`` (the narrower one
        is padded with zero columns).
    rotation : ndarray of shape (width, width)
        Orthogonal (reflections allowed).
    scale : float
    disparity : float in [0, 1]
        Sum of squared differences after aligning both standardised copies (centred, unit
        Frobenius norm); 0 for shapes equal up to similarity transforms (scipy's definition).
    """

    aligned: np.ndarray
    rotation: np.ndarray
    scale: float
    disparity: float


def procrustes_align(source: np.ndarray, target: np.ndarray) -> ProcrustesFit:
    """Rotate (or reflect), scale and translate ``source`` onto ``target``, row by row.

    Parameters
    ----------
    source, target : ndarrays of shape (n_samples, d_s) and (n_samples, d_t)

    Returns
    -------
    ProcrustesFit
    """
    src, tgt = _pair(source, target)
    width = max(src.shape[1], tgt.shape[1])
    src, tgt = _pad(src, width), _pad(tgt, width)
    src_mean, tgt_mean = src.mean(axis=0), tgt.mean(axis=0)
    s0, t0 = src - src_mean, tgt - tgt_mean
    ns, nt = np.linalg.norm(s0), np.linalg.norm(t0)
    if ns == 0.0 or nt == 0.0:  # a collapsed map: nothing to rotate
        return ProcrustesFit(np.tile(tgt_mean, (len(src), 1)), np.eye(width), 0.0, 1.0)
    u, sigma, vt = np.linalg.svd(s0.T @ t0)  # maximise tr(R^T S^T T)
    rotation = u @ vt
    scale = float(sigma.sum() / ns**2)
    disparity = float(max(0.0, 1.0 - (sigma.sum() / (ns * nt)) ** 2))
    aligned = scale * s0 @ rotation + tgt_mean
    return ProcrustesFit(aligned, rotation, scale, disparity)


@dataclass(frozen=True, eq=False)
class MapAlignment:
    """Two maps of the same samples in one frame, each standardised (:func:`align_maps`).

    Attributes
    ----------
    target : ndarray of shape (n_samples, width)
        The target map, centred and scaled to unit RMS distance from its centre.
    aligned : ndarray of shape (n_samples, width)
        The source map, centred, scaled to unit RMS distance and rotated (or reflected) onto the
        target: the same spread as ``target`` whatever the two maps' own scales.
    disparity : float in [0, 1]
        As :attr:`ProcrustesFit.disparity`.
    """

    target: np.ndarray
    aligned: np.ndarray
    disparity: float


def align_maps(source: np.ndarray, target: np.ndarray) -> MapAlignment:
    """Standardise both maps, then rotate (or reflect) ``source`` onto ``target``; no scale fit.

    The least-squares Procrustes scale (:func:`procrustes_align`) shrinks the source by the
    correlation of the two shapes: two latent spaces that agree little (a VAE and an SAE) leave
    the aligned map a small blob in the middle of the target's. Here each map is centred and
    scaled to unit RMS distance from its centre first, so both fill a panel of the same size.

    Parameters
    ----------
    source, target : ndarrays of shape (n_samples, d_s) and (n_samples, d_t)

    Returns
    -------
    MapAlignment
    """
    src, tgt = _pair(source, target)
    width = max(src.shape[1], tgt.shape[1])
    a, b = _pad(_standardise(tgt), width), _pad(_standardise(src), width)
    fit = procrustes_align(b, a)
    return MapAlignment(a, b @ fit.rotation, fit.disparity)


@dataclass(frozen=True, eq=False)
class CentroidDrift:
    """Per-class centroid displacement between two latent spaces, in A's standardised frame.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        The class codes present, sorted.
    counts : ndarray of shape (n_classes,), int64
    drift : ndarray of shape (n_classes,), float64
        ``||mean_A(c) - mean_B->A(c)||`` with both spaces centred, scaled to unit RMS distance
        from the mean, and B Procrustes-aligned onto A. 0 for identical spaces; 1 is the typical
        distance of a point from the centre.
    """

    classes: np.ndarray
    counts: np.ndarray
    drift: np.ndarray


def _standardise(z: np.ndarray) -> np.ndarray:
    z = z - z.mean(axis=0)
    rms = np.sqrt((z**2).sum(axis=1).mean())
    return z / rms if rms > 0 else z


def centroid_drift(z_a: np.ndarray, z_b: np.ndarray, y: np.ndarray) -> CentroidDrift:
    """How far each class centre moved from checkpoint A to checkpoint B.

    Parameters
    ----------
    z_a, z_b : ndarrays of shape (n_samples, d_a) and (n_samples, d_b)
    y : ndarray of shape (n_samples,)
        Class codes.

    Returns
    -------
    CentroidDrift
    """
    a, b = _pair(z_a, z_b)
    y = np.asarray(y)
    if y.shape != (len(a),):
        raise DataShapeError(f"y must have shape ({len(a)},) like the latents; got {y.shape}.")
    a = _standardise(a)
    b = procrustes_align(_standardise(b), a).aligned
    a = _pad(a, b.shape[1])
    classes, counts = np.unique(y, return_counts=True)
    drift = np.array(
        [np.linalg.norm(a[y == c].mean(axis=0) - b[y == c].mean(axis=0)) for c in classes]
    )
    return CentroidDrift(classes, counts.astype(np.int64), drift)


# ------------------------------------------------------------------------------ everything


@dataclass(frozen=True, eq=False)
class Comparison:
    """The numbers of a checkpoint comparison (:func:`compare_latents`).

    Attributes
    ----------
    jaccard : ndarray of shape (n_samples,)
        Per-point kNN Jaccard (:func:`knn_jaccard`).
    order : ndarray of shape (n_samples,), int64
        Rows from the most changed neighbourhood to the least (:func:`rank_by_change`).
    cka : float
        Linear CKA.
    disparity : float
        Procrustes disparity of the latent spaces (0 = same shape).
    drift : CentroidDrift
    k : int
    """

    jaccard: np.ndarray
    order: np.ndarray
    cka: float
    disparity: float
    drift: CentroidDrift
    k: int

    @property
    def mean_jaccard(self) -> float:
        return float(self.jaccard.mean())


def procrustes_disparity(source: np.ndarray, target: np.ndarray) -> float:
    """:func:`procrustes_align`'s disparity alone: only the singular values are computed (no
    rotation, no aligned copy), which is several times faster on wide (e.g. 3,136-D) latents."""
    src, tgt = _pair(source, target)
    width = max(src.shape[1], tgt.shape[1])
    s0 = _pad(src, width) - _pad(src, width).mean(axis=0)
    t0 = _pad(tgt, width) - _pad(tgt, width).mean(axis=0)
    ns, nt = np.linalg.norm(s0), np.linalg.norm(t0)
    if ns == 0.0 or nt == 0.0:
        return 1.0
    sigma = np.linalg.svd(s0.T @ t0, compute_uv=False)
    return float(max(0.0, 1.0 - (sigma.sum() / (ns * nt)) ** 2))


def compare_latents(z_a: np.ndarray, z_b: np.ndarray, y: np.ndarray, k: int = 10) -> Comparison:
    """kNN Jaccard, its ranking, linear CKA, Procrustes disparity and centroid drift at once.

    Parameters
    ----------
    z_a, z_b : ndarrays of shape (n_samples, d_a) and (n_samples, d_b)
    y : ndarray of shape (n_samples,)
    k : int, default=10

    Returns
    -------
    Comparison
        For ``z_b == z_a``: Jaccard 1 everywhere, CKA 1, disparity 0, drift 0.
    """
    jaccard = knn_jaccard(z_a, z_b, k)
    a, b = _pair(z_a, z_b)
    return Comparison(
        jaccard=jaccard,
        order=rank_by_change(jaccard),
        cka=linear_cka(a, b),
        disparity=procrustes_disparity(b, a),
        drift=centroid_drift(a, b, y),
        k=int(k),
    )


# ------------------------------------------------------------------------------ sequences


def pca_2d(z: np.ndarray) -> np.ndarray:
    """First two principal components, scaled to unit RMS distance from the origin.

    Parameters
    ----------
    z : ndarray of shape (n_samples, latent_dim)

    Returns
    -------
    ndarray of shape (n_samples, 2), float64
        A 1-D latent gets a zero second column.
    """
    z = _as_matrix(z, "z")
    z = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    coords = _pad(z @ vt[:2].T, 2)
    return _standardise(coords)


def align_sequence(snapshots: list[np.ndarray]) -> list[np.ndarray]:
    """2-D maps of latent snapshots of the same samples, each in the previous one's frame.

    Every snapshot is projected on its own first two principal components (unit RMS), then
    rotated or reflected (orthogonal Procrustes, no scaling) onto the previous aligned map, so
    consecutive frames differ only by how the points really moved.

    Parameters
    ----------
    snapshots : list of ndarrays of shape (n_samples, latent_dim)
        E.g. one per training epoch; the same rows in each.

    Returns
    -------
    list of ndarrays of shape (n_samples, 2), float64
    """
    out: list[np.ndarray] = []
    for z in snapshots:
        coords = pca_2d(z)
        if out:
            if len(coords) != len(out[-1]):
                raise DataShapeError(
                    f"Snapshots must hold the same samples; got {len(out[-1])} then "
                    f"{len(coords)} rows."
                )
            u, _, vt = np.linalg.svd(coords.T @ out[-1])
            coords = coords @ (u @ vt)
        out.append(coords)
    return out
