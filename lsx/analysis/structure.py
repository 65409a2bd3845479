"""Structure of latents without labels: clusters, outlier scores and near-duplicates.

Everything is computed on the latent vectors themselves, never on a 2-D projection (distances
in a UMAP or t-SNE map are not the model's). Pure: arrays in, arrays and small frozen
dataclasses out; every random choice takes a ``seed``.

- :func:`fit_clusters` / :func:`cluster_latents`: k-means with a silhouette sweep over k (fitted
  on a sample, then every point assigned to its nearest centre, so 10^6 points take seconds),
  or HDBSCAN (scikit-learn's, exact, up to :data:`HDBSCAN_MAX` points; label -1 is noise).
- :func:`cluster_table`: size, exemplars (nearest to the centre) and purity against labels.
- :func:`outlier_scores`: mean distance to the k nearest neighbours in latent space (higher =
  more unusual); above ``reference_max`` points, to the neighbours in a fixed random reference
  sample, so 10^6 points need one index of 10^5.
- :func:`near_duplicate_groups`: groups of points joined by pairs closer than a threshold.

Drift between two sets of latents (one checkpoint, two datasets) is :mod:`lsx.analysis.drift`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lsx.analysis.knn import build_index
from lsx.errors import ConfigError, DataShapeError

CLUSTER_METHODS = ("kmeans", "hdbscan")
K_RANGE = (2, 12)  # k-means sweep, inclusive
SWEEP_SAMPLE = 20_000  # points each k of the sweep is fitted on
SILHOUETTE_SAMPLE = 4_000  # points each silhouette is measured on (quadratic in this)
FIT_SAMPLE = 100_000  # the chosen k is refitted on at most this many points; all are assigned
HDBSCAN_MAX = 50_000  # scikit-learn's HDBSCAN is exact: minutes above this
OUTLIER_K = 10
REFERENCE_MAX = 100_000  # outlier and novelty scores: neighbours searched among at most this many
_ASSIGN_BLOCK = 65_536


def _latents(z: np.ndarray, name: str = "z", min_rows: int = 1) -> np.ndarray:
    """A finite 2-D float array (a memory map stays one; rows are read when used)."""
    a = np.asarray(z)
    if a.ndim != 2 or a.shape[1] < 1 or not np.issubdtype(a.dtype, np.number):
        raise DataShapeError(
            f"{name} must be a 2-D numeric array (n_points, latent_dim); got {a.dtype} {a.shape}."
        )
    if len(a) < min_rows:
        raise DataShapeError(f"{name} has {len(a)} rows; at least {min_rows} are needed.")
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float64)
    if not np.isfinite(out).all():
        raise DataShapeError(f"{name} holds NaN or Inf values; structure needs finite latents.")
    return out


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted row ids of a uniform sample of ``min(n, size)`` rows (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


# ------------------------------------------------------------------------------ clusters


@dataclass(frozen=True, eq=False)
class Clustering:
    """Clusters of a set of latents (see :func:`fit_clusters`)."""

    labels: np.ndarray  # (n,) int64 cluster per point; -1 = noise (HDBSCAN only)
    centres: np.ndarray  # (k, dim) float64: the k-means centres, or each cluster's mean
    method: str
    k: int
    sweep: tuple[tuple[int, float], ...]  # (k, silhouette) per k tried; empty when k was given
    silhouette: float  # of the result, on a sample (NaN for one cluster)
    n_fit: int  # points the final model was fitted on (the rest assigned to the nearest centre)
    note: str  # how it was found, or why it is degenerate


def _check_method(method: str, k: int | None, k_range: tuple[int, int]) -> None:
    if method not in CLUSTER_METHODS:
        raise ConfigError(f"Cluster method must be one of {', '.join(CLUSTER_METHODS)}; got "
                          f"{method!r}.")  # fmt: skip
    if k is not None and (not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1):
        raise ConfigError(f"k (clusters) must be an int >= 1 or None (chosen by silhouette); "
                          f"got {k!r}.")  # fmt: skip
    lo, hi = k_range
    if not 2 <= lo <= hi:
        raise ConfigError(f"k_range must be (lo, hi) with 2 <= lo <= hi; got {k_range!r}.")


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    keep = labels >= 0
    if len(np.unique(labels[keep])) < 2 or keep.sum() < 3:
        return math.nan
    idx = _sample(int(keep.sum()), SILHOUETTE_SAMPLE, seed)
    xs, ls = x[keep][idx], labels[keep][idx]
    if len(np.unique(ls)) < 2:
        return math.nan
    return float(silhouette_score(xs, ls))


def assign_to_centres(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centre (Euclidean), read in blocks: (n,) int64."""
    c = np.asarray(centres, dtype=np.float64)
    c_sq = (c**2).sum(1)
    out = np.empty(len(z), dtype=np.int64)
    for start in range(0, len(z), _ASSIGN_BLOCK):
        block = np.asarray(z[start : start + _ASSIGN_BLOCK], dtype=np.float64)
        d2 = c_sq[None, :] - 2.0 * block @ c.T  # |x|^2 is the same for every centre
        out[start : start + len(block)] = np.argmin(d2, axis=1)
    return out


def _means(z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each cluster 0..k-1 (noise, -1, left out), read in blocks: (k, dim) float64."""
    sums = np.zeros((k, z.shape[1]))
    counts = np.zeros(k)
    for start in range(0, len(z), _ASSIGN_BLOCK):
        lab = labels[start : start + _ASSIGN_BLOCK]
        keep = lab >= 0
        block = np.asarray(z[start : start + _ASSIGN_BLOCK], dtype=np.float64)[keep]
        np.add.at(sums, lab[keep], block)
        counts += np.bincount(lab[keep], minlength=k)
    return sums / np.maximum(counts, 1)[:, None]


def fit_clusters(
    z: np.ndarray,
    *,
    seed: int = 0,
    method: str = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = K_RANGE,
    min_cluster_size: int | None = None,
) -> Clustering:
    """Cluster latents (not their 2-D projection).

    Parameters
    ----------
    z : ndarray of shape (n, dim)
        Finite latents; a memory map is read in blocks and by sample.
    seed : int
        Samples and k-means initialisation.
    method : {"kmeans", "hdbscan"}
        ``kmeans``: when ``k`` is None, each k in ``k_range`` is fitted on a sample of
        :data:`SWEEP_SAMPLE` points and the k with the highest silhouette (on
        :data:`SILHOUETTE_SAMPLE` points) wins; the winner is refitted on :data:`FIT_SAMPLE`
        points and every point is assigned to its nearest centre. ``hdbscan``: scikit-learn's
        HDBSCAN on all points (at most :data:`HDBSCAN_MAX`); -1 marks noise.
    k : int, optional
        A fixed number of clusters (k-means only).
    k_range : (lo, hi)
        The k tried by the sweep, both ends included (capped at the distinct points).
    min_cluster_size : int, optional
        HDBSCAN's smallest cluster; default 1 % of the points, at least 5.

    Returns
    -------
    Clustering
        One cluster with a note saying why when the latents are all identical (a collapsed
        encoder) or too few to split.

    Raises
    ------
    ConfigError
        Unknown method, bad k or k_range, HDBSCAN above :data:`HDBSCAN_MAX` points.
    DataShapeError
        ``z`` is not a finite 2-D array with at least one row.
    """
    _check_method(method, k, k_range)
    z = _latents(z)
    n = len(z)
    sweep_ids = _sample(n, max(SWEEP_SAMPLE, FIT_SAMPLE) if method == "hdbscan" else SWEEP_SAMPLE,
                        seed)  # fmt: skip
    xs = _finite(z[sweep_ids], "z")
    n_distinct = len(np.unique(xs, axis=0))
    if n_distinct < 2 or n < 3:
        why = ("all latents are identical (the encoder may have collapsed: every input gets the "
               "same code), so there is nothing to separate" if n_distinct < 2 else
               f"{n} points are too few to split")  # fmt: skip
        return Clustering(
            labels=np.zeros(n, dtype=np.int64), centres=xs.mean(0, keepdims=True),
            method=method, k=1, sweep=(), silhouette=math.nan, n_fit=len(xs),
            note=f"One cluster: {why}.",
        )  # fmt: skip
    if method == "hdbscan":
        return _hdbscan(z, min_cluster_size, seed)
    from sklearn.cluster import KMeans

    sweep: list[tuple[int, float]] = []
    if k is None:
        lo, hi = k_range[0], min(k_range[1], n_distinct, len(xs) - 1)
        for kk in range(lo, max(hi, lo) + 1):
            lab = KMeans(kk, n_init=3, random_state=seed).fit_predict(xs)
            sweep.append((kk, _silhouette(xs, lab, seed)))
        scored = [s for s in sweep if not math.isnan(s[1])]
        k = max(scored, key=lambda s: s[1])[0] if scored else lo
        how = (f"k = {k} chosen by the highest silhouette over k = {lo}..{max(hi, lo)} "
               f"(each fitted on {len(xs):,} points)")  # fmt: skip
    else:
        k = int(min(k, n_distinct))
        how = f"k = {k} as asked"
    fit_ids = sweep_ids if len(sweep_ids) >= min(n, FIT_SAMPLE) else _sample(n, FIT_SAMPLE, seed)
    xf = xs if fit_ids is sweep_ids else _finite(z[fit_ids], "z")
    km = KMeans(int(k), n_init=3, random_state=seed).fit(xf)
    centres = km.cluster_centers_.astype(np.float64)
    labels = assign_to_centres(z, centres) if len(xf) < n else km.labels_.astype(np.int64)
    sil = _silhouette(xs, labels[sweep_ids], seed) if int(k) > 1 else math.nan  # xs's labels
    rest = (
        f"; the other {n - len(xf):,} points assigned to the nearest centre" if len(xf) < n else ""
    )
    return Clustering(
        labels=labels, centres=centres, method="kmeans", k=int(k), sweep=tuple(sweep),
        silhouette=sil, n_fit=len(xf), note=f"k-means, {how}; fitted on {len(xf):,} points{rest}.",
    )  # fmt: skip


def _hdbscan(z: np.ndarray, min_cluster_size: int | None, seed: int) -> Clustering:
    from sklearn.cluster import HDBSCAN

    n = len(z)
    if n > HDBSCAN_MAX:
        raise ConfigError(
            f"HDBSCAN is exact and takes minutes above {HDBSCAN_MAX:,} points; this set has "
            f"{n:,}. Use method='kmeans' (fitted on a sample, every point assigned)."
        )
    x = _finite(z[:], "z")
    size = int(min_cluster_size or max(5, n // 100))
    labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(x).astype(np.int64)
    k = int(labels.max()) + 1
    if k == 0:  # all noise: one cluster, so pages still have something to colour
        labels[:] = 0
        k = 1
    noise = int((labels < 0).sum())
    return Clustering(
        labels=labels, centres=_means(x, labels, k), method="hdbscan", k=k, sweep=(),
        silhouette=_silhouette(x, labels, seed), n_fit=n,
        note=f"HDBSCAN (min cluster size {size}): {k} clusters, {noise:,} noise points (-1).",
    )  # fmt: skip


def cluster_latents(z: np.ndarray, *, seed: int = 0, **options: object) -> np.ndarray:
    """Cluster labels of ``z`` (see :func:`fit_clusters` for the options): (n,) int64."""
    return fit_clusters(z, seed=seed, **options).labels  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClusterRow:
    """One cluster of :func:`cluster_table`."""

    cluster: int
    size: int
    share: float  # of all points
    exemplars: tuple[int, ...]  # row ids nearest to the centre, nearest first
    majority: int | None  # most frequent label code (None without labels)
    purity: float  # share of the majority label (NaN without labels)


def cluster_table(
    z: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    y: np.ndarray | None = None,
    n_exemplars: int = 6,
) -> list[ClusterRow]:
    """Per cluster (largest first): size, exemplars nearest to its centre, label purity.

    Noise points (-1) form no row. ``y``: integer label codes of the same rows, optional.
    """
    z = _latents(z)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(z),) or (y is not None and np.shape(y) != (len(z),)):
        raise DataShapeError(
            f"cluster labels {labels.shape} and label codes {np.shape(y)} must both have one "
            f"entry per row of z ({len(z)})."
        )
    rows = []
    for c in np.unique(labels[labels >= 0]):
        ids = np.flatnonzero(labels == c)
        d = np.linalg.norm(np.asarray(z[ids], dtype=np.float64) - centres[c], axis=1)
        near = ids[np.argsort(d, kind="stable")[:n_exemplars]]
        majority, purity = None, math.nan
        if y is not None:
            codes, counts = np.unique(np.asarray(y)[ids], return_counts=True)
            majority, purity = int(codes[np.argmax(counts)]), float(counts.max() / len(ids))
        rows.append(ClusterRow(int(c), len(ids), len(ids) / len(z), tuple(int(i) for i in near),
                               majority, purity))  # fmt: skip
    return sorted(rows, key=lambda r: (-r.size, r.cluster))


def purity(labels: np.ndarray, y: np.ndarray) -> float:
    """Share of points whose label is their cluster's majority label (noise left out)."""
    labels, y = np.asarray(labels), np.asarray(y)
    keep = labels >= 0
    if not keep.any():
        return math.nan
    total = 0
    for c in np.unique(labels[keep]):
        total += np.bincount(y[labels == c]).max()
    return float(total / keep.sum())


# ------------------------------------------------------------------------------ scores


def _check_k(k: int, n: int, name: str = "k") -> int:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"{name} (neighbours) must be an int >= 1; got {k!r}.")
    if n < 2:
        raise DataShapeError(f"Neighbour scores need at least 2 points; got {n}.")
    return int(min(k, n - 1))


def knn_distance(
    z_ref: np.ndarray,
    z: np.ndarray | None = None,
    *,
    k: int = OUTLIER_K,
    reference_max: int = REFERENCE_MAX,
    seed: int = 0,
    threads: int = 1,
) -> np.ndarray:
    """Mean distance of each row to its ``k`` nearest reference rows: (n,) float64.

    ``z`` None scores the reference's own rows, each without itself. References larger than
    ``reference_max`` are replaced by a fixed random sample of that size (seed), so the scores
    of 10^6 points need one index of ``reference_max`` rows (HNSW above 50,000, exact below).
    """
    z_ref = _latents(z_ref, "z_ref")
    own = z is None
    q = z_ref if own else _latents(z, "z")
    if not own and q.shape[1] != z_ref.shape[1]:
        raise DataShapeError(
            f"The sets have {q.shape[1]} and {z_ref.shape[1]} latent dimensions; compare sets "
            "encoded by the same checkpoint."
        )
    ref_ids = _sample(len(z_ref), reference_max, seed)
    k = _check_k(k, len(ref_ids) + (0 if own else 1))
    index = build_index(np.asarray(z_ref[ref_ids]), threads=threads, n_queries=len(q))
    out = np.empty(len(q), dtype=np.float64)
    in_ref = np.zeros(len(q), dtype=bool)
    if own:
        in_ref[ref_ids] = True
    block = 262_144
    for start in range(0, len(q), block):
        stop = min(start + block, len(q))
        _, dist = index.query(np.asarray(q[start:stop]), k + 1 if own else k)
        if own:  # a reference row finds itself at distance 0 first: skip one zero
            mine = in_ref[start:stop]
            dist = np.where(mine[:, None], dist[:, 1:], dist[:, :k])
        out[start:stop] = dist.mean(1)
    return out


def outlier_scores(
    z: np.ndarray,
    *,
    k: int = OUTLIER_K,
    reference_max: int = REFERENCE_MAX,
    seed: int = 0,
    threads: int = 1,
) -> np.ndarray:
    """kNN-distance outlier score of every point, higher = more unusual: (n,) float64.

    The mean Euclidean distance to the ``k`` nearest other points in latent space (to the
    nearest points of a fixed random sample of ``reference_max`` above that size).
    """
    return knn_distance(z, None, k=k, reference_max=reference_max, seed=seed, threads=threads)


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Percentile (0-100] of each value among all (ties share the highest rank); NaN stays NaN."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    if ok.any():
        s = np.sort(v[ok])
        out[ok] = 100.0 * np.searchsorted(s, v[ok], side="right") / len(s)
    return out


def top_share(scores: np.ndarray, share: float = 0.01) -> np.ndarray:
    """Row ids of the highest ``share`` of the scores (at least one), highest first."""
    if not 0 < share <= 1:
        raise ConfigError(f"share must be in (0, 1]; got {share!r}.")
    s = np.asarray(scores, dtype=np.float64)
    m = max(1, int(round(share * len(s))))
    top = np.argpartition(-s, m - 1)[:m] if m < len(s) else np.arange(len(s))
    return top[np.lexsort((top, -s[top]))]


def near_duplicate_groups(
    z: np.ndarray, threshold: float, *, k: int = 5, threads: int = 1
) -> np.ndarray:
    """Groups of near-duplicates: points joined by pairs closer than ``threshold``.

    Each point's ``k`` nearest neighbours are searched (approximately above 50,000 points) and
    pairs at distance <= threshold joined; connected groups of two or more get ids 0, 1, ...
    (largest first), every other point -1. Returns (n,) int64.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    z = _latents(z)
    if not threshold >= 0:
        raise ConfigError(f"threshold must be a distance >= 0; got {threshold!r}.")
    n = len(z)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    k = _check_k(k, n)
    index = build_index(np.asarray(z[:]), threads=threads)
    ids, dist = index.query(np.asarray(z[:]), k + 1)
    rows = np.repeat(np.arange(n), ids.shape[1])
    close = (dist.ravel() <= threshold) & (ids.ravel() != rows)
    graph = coo_matrix((np.ones(close.sum()), (rows[close], ids.ravel()[close])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    out = np.full(n, -1, dtype=np.int64)
    big = np.flatnonzero(sizes >= 2)
    order = big[np.lexsort((big, -sizes[big]))]  # largest first, then by component id
    for new, c in enumerate(order):
        out[comp == c] = new
    return out
