"""Drift: has the distribution of latents moved between two datasets encoded by one checkpoint?

:func:`drift_test` compares a new set with a reference: MMD (Gaussian kernel, median-distance
width) with a permutation p-value, each new point's novelty (mean distance to its k nearest
reference points) against the reference's own leave-one-out scores, and the share of new points
in clusters of the pooled sample that the reference (almost) lacks. Pure: arrays in, a frozen
dataclass out, the seed an argument. Clusters and kNN distances are
:mod:`lsx.analysis.structure`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lsx.analysis.structure import OUTLIER_K, _finite, _latents, _sample, fit_clusters, knn_distance
from lsx.errors import ConfigError, DataShapeError

NOVEL_QUANTILE = 0.99  # a new point is novel above this quantile of the reference's own scores
NOVEL_CLUSTER_SHARE = 0.1  # a cluster "the reference lacks": its reference share < 10 % of expected


@dataclass(frozen=True, eq=False)
class Drift:
    """A second set of latents against a reference (see :func:`drift_test`)."""

    statistic: float  # MMD^2 (biased, Gaussian kernel) between the two samples
    p_value: float  # permutation p-value, (1 + #perm >= observed) / (1 + n_permutations)
    bandwidth: float  # the kernel's width: median pairwise distance of the pooled sample
    n_ref: int  # points of each set in the test (samples of at most max_points)
    n_new: int
    n_permutations: int
    novelty: np.ndarray  # (len(z_new),) mean kNN distance of each new point to the reference
    novelty_threshold: float  # the NOVEL_QUANTILE of the reference's own (leave-one-out) scores
    share_novel: float  # new points above the threshold (about 1 - NOVEL_QUANTILE without drift)
    novel_clusters: tuple[int, ...]  # clusters of the pooled sample the reference (almost) lacks
    share_in_novel_clusters: float  # new points (of the sample) in those clusters
    k_clusters: int


def _mmd_permutations(
    x: np.ndarray, m: int, n_perm: int, seed: int
) -> tuple[float, np.ndarray, float]:
    """MMD^2 of rows ``:m`` vs ``m:`` of x and of ``n_perm`` random relabellings."""
    from scipy.spatial.distance import pdist, squareform

    d = squareform(pdist(x))
    off = d[np.triu_indices(len(x), 1)]
    bw = float(np.median(off)) if off.size else 1.0
    bw = bw if bw > 0 else 1.0
    kern = np.exp(-(d**2) / (2 * bw**2))
    n = len(x) - m
    rng = np.random.default_rng(seed)

    def weights(first: np.ndarray) -> np.ndarray:
        w = np.full(len(x), -1.0 / n)
        w[first] = 1.0 / m
        return w

    w0 = weights(np.arange(m))
    observed = float(w0 @ kern @ w0)
    perms = np.stack([weights(rng.permutation(len(x))[:m]) for _ in range(n_perm)], axis=1)
    null = np.einsum("ip,ip->p", perms, kern @ perms)  # w' K w per permutation, one matmul
    return observed, null, bw


def drift_test(
    z_ref: np.ndarray,
    z_new: np.ndarray,
    *,
    seed: int = 0,
    n_permutations: int = 200,
    max_points: int = 1_000,
    k: int = OUTLIER_K,
    clusters: bool = True,
    threads: int = 1,
) -> Drift:
    """Has the distribution of latents moved? One checkpoint, two datasets.

    Parameters
    ----------
    z_ref, z_new : ndarray of shape (n_ref, dim), (n_new, dim)
        Latents of the reference and of the new set, from the same checkpoint.
    seed : int
        Samples, permutations and clusters.
    n_permutations : int
        Relabellings of the pooled sample for the p-value.
    max_points : int
        Each set is subsampled to this many points for the MMD and the clusters (the kernel
        matrix is quadratic in it); novelty is computed for every new point.
    k : int
        Neighbours of the novelty score.
    clusters : bool
        Cluster the pooled sample (k-means, silhouette sweep) and find the clusters with under
        ``NOVEL_CLUSTER_SHARE`` of their expected reference share.

    Returns
    -------
    Drift
    """
    z_ref, z_new = _latents(z_ref, "z_ref", 2), _latents(z_new, "z_new", 2)
    if z_ref.shape[1] != z_new.shape[1]:
        raise DataShapeError(
            f"The reference has {z_ref.shape[1]} latent dimensions and the new set "
            f"{z_new.shape[1]}; encode both with the same checkpoint."
        )
    if not isinstance(n_permutations, int) or n_permutations < 1 or max_points < 2:
        raise ConfigError(f"n_permutations must be an int >= 1 and max_points >= 2; got "
                          f"{n_permutations!r}, {max_points!r}.")  # fmt: skip
    a = _finite(z_ref[_sample(len(z_ref), max_points, seed)], "z_ref")
    b = _finite(z_new[_sample(len(z_new), max_points, seed + 1)], "z_new")
    pooled = np.concatenate([a, b])
    stat, null, bw = _mmd_permutations(pooled, len(a), n_permutations, seed)
    p = (1 + int((null >= stat - 1e-12).sum())) / (1 + n_permutations)
    novelty = knn_distance(z_ref, z_new, k=k, seed=seed, threads=threads)
    own = knn_distance(z_ref, None, k=k, seed=seed, threads=threads)
    threshold = float(np.quantile(own, NOVEL_QUANTILE))
    novel, share_in, k_c = (), math.nan, 0
    if clusters:
        cl = fit_clusters(pooled, seed=seed)
        k_c = cl.k
        is_new = np.arange(len(pooled)) >= len(a)
        expected = len(a) / len(pooled)
        found = []
        for c in range(cl.k):
            members = cl.labels == c
            if members.any() and (~is_new[members]).mean() < NOVEL_CLUSTER_SHARE * expected:
                found.append(c)
        novel = tuple(found)
        share_in = float(np.isin(cl.labels[is_new], found).mean())
    return Drift(
        statistic=stat, p_value=p, bandwidth=bw, n_ref=len(a), n_new=len(b),
        n_permutations=n_permutations, novelty=novelty, novelty_threshold=threshold,
        share_novel=float((novelty > threshold).mean()), novel_clusters=novel,
        share_in_novel_clusters=share_in, k_clusters=k_c,
    )  # fmt: skip
