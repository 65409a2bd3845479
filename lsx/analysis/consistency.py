"""Consistency of a posterior under semantics-preserving transforms (docs/methods.md).

For each transform t of a set: KL(q(z|t(x)) || q(z|x)) per pair, the latent displacement
||mu(t(x)) - mu(x)|| relative to the typical (median) distance between two samples, and kNN
retention (share of a point's k latent neighbours that are still its neighbours after t); plus the
Consistency page's helpers (pairs on a PCA map, a gallery of transformed inputs).

Pure functions: a model (eval mode, never modified) plus arrays in, arrays, floats or frozen
dataclasses out; every random draw comes from a seeded generator. The pair KL needs a Gaussian
posterior (``posterior(x) -> (mu, logvar)``) and is None for deterministic encoders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from lsx.analysis.embedding import (
    _as_2d,
    _tensor,
    check_images,
    posterior_arrays,
)
from lsx.data.transforms import TransformSet
from lsx.errors import ConfigError, DataShapeError

DEFAULT_NEIGHBORS = 10
MAX_PAIRS = 200_000  # typical distance: all pairs up to ~630 points, else this many random pairs


# ------------------------------------------------------------------------------ consistency


def typical_distance(z: np.ndarray, *, seed: int = 0) -> float:
    """Median Euclidean distance between two different samples (all pairs, or MAX_PAIRS)."""
    z = _as_2d(z, "z")
    n = len(z)
    if n * (n - 1) // 2 <= MAX_PAIRS:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, MAX_PAIRS)
        j = (i + rng.integers(1, n, MAX_PAIRS)) % n  # never i itself
    return float(np.median(np.linalg.norm(z[i] - z[j], axis=1)))


def knn_retention(z: np.ndarray, z_t: np.ndarray, k: int = DEFAULT_NEIGHBORS) -> np.ndarray:
    """Per point, the share of its k nearest latent neighbours kept after the transform.

    Neighbours of ``z[i]`` and of ``z_t[i]`` are both taken among the originals ``z[j]``,
    ``j != i``; retention_i = |N_k(z_i) & N_k(z_t_i)| / k. Shape (n_samples,). Exact search up
    to ``lsx.analysis.knn.EXACT_MAX`` points, an HNSW index above.
    """
    from lsx.analysis.knn import build_index

    z, z_t = _as_2d(z, "z"), _as_2d(z_t, "z_t")
    n = len(z)
    if z.shape != z_t.shape:
        raise DataShapeError(f"z {z.shape} and z_t {z_t.shape} must have the same shape.")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n - 1:
        raise ConfigError(f"k (neighbours) must be an int in [1, {n - 1}]; got {k!r}.")
    with threadpool_limits(1):
        index = build_index(z)
        own = _drop_self(index.query(z, k + 1)[0], k)
        moved = _drop_self(index.query(z_t, k + 1)[0], k)
    kept = [len(set(a) & set(b)) for a, b in zip(own.tolist(), moved.tolist(), strict=True)]
    return np.asarray(kept, dtype=np.float64) / k


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (or the farthest one when it is absent); (n, k)."""
    own = np.arange(len(idx))[:, None]
    keep = idx != own
    keep[keep.sum(1) > k, -1] = False  # self not among the k + 1: drop the farthest
    return idx[keep].reshape(len(idx), k)


@dataclass(frozen=True, eq=False)
class TransformScores:
    """Consistency of one transform on n points (one random draw per point)."""

    name: str
    z_t: np.ndarray  # (n, latent_numel) posterior means of t(x)
    kl: np.ndarray | None  # (n,) KL(q(z|t(x)) || q(z|x)); None for deterministic encoders
    displacement: np.ndarray  # (n,) ||mu(t(x)) - mu(x)|| / typical inter-sample distance
    knn: np.ndarray  # (n,) kNN retention per point

    def summary(self) -> dict[str, float | None]:
        return {
            "kl": None if self.kl is None else float(self.kl.mean()),
            "displacement": float(self.displacement.mean()),
            "knn": float(self.knn.mean()),
        }


def transform_variants(tset: TransformSet) -> dict[str, TransformSet]:
    """Each op of the set on its own, then the whole set as ``"all"`` (when it has > 1 op)."""
    out = {name: tset.op(name) for name in tset.op_names}
    if len(out) > 1:
        out["all"] = tset
    return out


def consistency_scores(
    model: nn.Module,
    x: np.ndarray,
    tset: TransformSet,
    *,
    strength: float = 1.0,
    seed: int = 0,
    k: int = DEFAULT_NEIGHBORS,
    posterior: tuple[np.ndarray, np.ndarray | None] | None = None,
    batch_size: int = 512,
) -> dict[str, TransformScores]:
    """Consistency scores per transform (each op of the set, then ``"all"``).

    Parameters
    ----------
    model : nn.Module
    x : ndarray of shape (n_samples, C, H, W)
    tset : TransformSet
        E.g. ``lsx.data.transforms.resolve_set("simple", input_shape, dataset)``.
    strength, seed : as the transform set's; transform i draws from ``seed + i``
    k : int, default=10
        Neighbours for kNN retention.
    posterior : (mu, logvar) or None
        ``posterior_arrays(model, x)`` when already computed.

    Returns
    -------
    dict name -> TransformScores
    """
    x = check_images(model, x)
    mu, lv = posterior if posterior is not None else posterior_arrays(model, x)
    scale = max(typical_distance(mu, seed=seed), 1e-12)
    out: dict[str, TransformScores] = {}
    for i, (name, variant) in enumerate(transform_variants(tset).items()):
        gen = torch.Generator().manual_seed(seed + i)
        x_t = np.concatenate(
            [
                variant(_tensor(x[s : s + batch_size]), strength=strength, generator=gen)
                .float()
                .numpy()
                for s in range(0, len(x), batch_size)
            ]
        )
        mu_t, lv_t = posterior_arrays(model, x_t, batch_size=batch_size)
        kl = None
        if lv is not None and lv_t is not None:
            kl = (0.5 * (lv - lv_t + (np.exp(lv_t) + (mu_t - mu) ** 2) / np.exp(lv) - 1.0)).sum(1)
        out[name] = TransformScores(
            name=name,
            z_t=mu_t,
            kl=kl,
            displacement=np.linalg.norm(mu_t - mu, axis=1) / scale,
            knn=knn_retention(mu, mu_t, k),
        )
    return out


# ------------------------------------------------------------------------------ page helpers


@dataclass(frozen=True, eq=False)
class PairProjection:
    """2-D positions of sampled (x, t(x)) pairs on a PCA map of the posterior means."""

    background: np.ndarray  # (n, 2) every evaluation point
    ids: np.ndarray  # (n_pairs,) indices of the sampled points
    origin: np.ndarray  # (n_pairs, 2) the sampled points
    moved: dict[str, np.ndarray]  # transform -> (n_pairs, 2) their transformed versions
    explained: float  # share of the variance the two axes keep


def pair_projection(
    z: np.ndarray, z_t: dict[str, np.ndarray], *, n_pairs: int = 40, seed: int = 0
) -> PairProjection:
    """Project originals and transformed codes with one PCA fit on the originals.

    Parameters
    ----------
    z : ndarray of shape (n, latent_numel)
    z_t : dict transform name -> ndarray of shape (n, latent_numel)
    n_pairs : int, default=40
        Pairs drawn per transform (the same points for every transform).
    seed : int, default=0

    Returns
    -------
    PairProjection
    """
    from sklearn.decomposition import PCA

    z = _as_2d(z, "z")
    if not isinstance(n_pairs, int) or n_pairs < 1:
        raise ConfigError(f"n_pairs must be an int >= 1; got {n_pairs!r}.")
    for name, zt in z_t.items():
        if np.shape(zt) != z.shape:
            raise DataShapeError(f"z_t[{name!r}] has shape {np.shape(zt)}; expected {z.shape}.")
    ids = np.sort(np.random.default_rng(seed).choice(len(z), min(n_pairs, len(z)), replace=False))
    if z.shape[1] <= 2:  # already 2-D (or 1-D): plot the latent itself

        def pad(a: np.ndarray) -> np.ndarray:
            return np.pad(np.asarray(a, np.float64), ((0, 0), (0, 2 - z.shape[1])))

        moved = {k: pad(np.asarray(v)[ids]) for k, v in z_t.items()}
        return PairProjection(pad(z), ids, pad(z[ids]), moved, 1.0)
    pca = PCA(n_components=2, random_state=seed).fit(z)
    return PairProjection(
        background=pca.transform(z),
        ids=ids,
        origin=pca.transform(z[ids]),
        moved={k: pca.transform(np.asarray(v, np.float64)[ids]) for k, v in z_t.items()},
        explained=float(pca.explained_variance_ratio_.sum()),
    )


def transform_gallery(
    model: nn.Module, x: np.ndarray, tset: TransformSet, *, strength: float = 1.0, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One image, each transform of it, and the reconstructions of all of them.

    Parameters
    ----------
    model : nn.Module
    x : ndarray of shape (C, H, W)
    tset : TransformSet
    strength, seed : transform i draws from ``seed + i`` (as :func:`consistency_scores`)

    Returns
    -------
    names : list of str
        ``"input"``, then each transform of :func:`transform_variants`.
    images, reconstructions : ndarrays of shape (len(names), C, H, W)
    """
    x = check_images(model, np.asarray(x)[None])
    batch = [torch.from_numpy(np.array(x))]
    names = ["input"]
    for i, (name, variant) in enumerate(transform_variants(tset).items()):
        gen = torch.Generator().manual_seed(seed + i)
        batch.append(variant(batch[0], strength=strength, generator=gen))
        names.append(name)
    images = torch.cat(batch)
    with torch.inference_mode():
        recon = model.decode(model.encode(images))
    return names, images.float().numpy(), recon.float().numpy()
