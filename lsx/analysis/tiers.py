"""Projection tiers: exact projections up to a size, sample + nearest-neighbour placement above.

UMAP and t-SNE do not scale to 10^6 points on a CPU. :func:`project_tiered` therefore picks a
tier by the number of points (:func:`plan_projection`):

- ``"exact"``: ``n <= exact_max`` -> :func:`lsx.analysis.projection.project` on every point.
- ``"sample+knn"`` (UMAP, t-SNE): fit on a seeded sample of ``sample_size`` points (stratified
  by label with :func:`lsx.analysis.projection.sample_per_class` when labels are given), then
  place every other point at the mean 2-D/3-D position of its ``k`` nearest *fitted* points in
  latent space (:mod:`lsx.analysis.knn`; never ``UMAP.transform``: slow first call and
  batch-dependent results). Sampled points keep their fitted coordinates.
- ``"sample+transform"`` (PCA): PCA fitted on the sample, applied to every point. PCA is linear,
  so this is the same map up to the sampling error of the covariance.

Inputs may be ``np.memmap`` (e.g. a latent store's ``z``): rows are read in chunks of
``chunk_size``, so memory stays bounded by the sample plus one chunk, and the output.

Optional GPU backend: with ``backend="auto"`` the UMAP fit runs on cuML
(``cuml.manifold.UMAP``) when cuML imports and a CUDA GPU is present; umap-learn stays the
reference and the CPU default. cuML's UMAP differs numerically from umap-learn (NVIDIA/cuml#5474),
so the backend used is recorded in the info dict.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsx.analysis.knn import build_index
from lsx.analysis.projection import check_request, project, sample_per_class
from lsx.errors import ConfigError, DataShapeError

# Largest n projected exactly, per method (configurable per call). UMAP: ~15-60 s at 50k on 2
# cores, seeded; t-SNE: ~40 s at 10k; PCA: 200k x 64 fits in < 1 s.
EXACT_MAX: dict[str, int] = {"pca": 200_000, "umap": 50_000, "tsne": 10_000}
DEFAULT_K = 15  # neighbours averaged per placed point (UMAP's default n_neighbors)
CHUNK_SIZE = 65_536  # rows read from z per step (64 dims: 16 MiB float32)
BACKENDS = ("auto", "cpu", "cuml")
TIERS = ("exact", "sample+knn", "sample+transform")


@dataclass(frozen=True)
class Tier:
    """How a projection of ``n_points`` points is computed (see :func:`plan_projection`)."""

    name: str  # one of TIERS
    method: str
    n_points: int
    n_fit: int  # points the method is fitted on
    exact_max: int
    k: int | None  # neighbours per placed point (sample+knn only)

    @property
    def n_placed(self) -> int:
        """Points not fitted: placed by kNN or transformed."""
        return self.n_points - self.n_fit

    def describe(self) -> str:
        """One sentence for the UI, e.g. "exact UMAP on 1,797 points"."""
        name = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}.get(self.method, self.method)
        if self.name == "exact":
            return f"exact {name} on {self.n_points:,} points"
        if self.name == "sample+transform":
            return (
                f"{name} fitted on a stratified sample of {self.n_fit:,} points and applied to "
                f"all {self.n_points:,}"
            )
        return (
            f"{name} fitted on a stratified sample of {self.n_fit:,} points; the other "
            f"{self.n_placed:,} placed by their {self.k} nearest neighbours in latent space"
        )


def _check_count(value: object, name: str, low: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}; got {value!r}.")
    return int(value)


def plan_projection(
    n: int,
    method: str,
    *,
    exact_max: int | None = None,
    sample_size: int | None = None,
    k: int = DEFAULT_K,
) -> Tier:
    """The tier that :func:`project_tiered` uses for ``n`` points.

    Parameters
    ----------
    n : int
        Number of points (>= 3).
    method : {"pca", "umap", "tsne"}
    exact_max : int or None
        Largest ``n`` projected exactly; default ``EXACT_MAX[method]`` (PCA 200,000, UMAP 50,000,
        t-SNE 10,000).
    sample_size : int or None
        Points fitted above ``exact_max``; default ``exact_max``.
    k : int
        Neighbours averaged per placed point.

    Returns
    -------
    Tier
        ``"exact"`` when ``n <= exact_max``; else ``"sample+knn"`` (UMAP, t-SNE) or
        ``"sample+transform"`` (PCA).

    Raises
    ------
    ConfigError
        Unknown method, or a size that is not an int in range.
    """
    check_request(method, 2, 0)  # ConfigError on an unknown method
    n = _check_count(n, "n (points)", 3)
    exact_max = EXACT_MAX[method] if exact_max is None else _check_count(exact_max, "exact_max", 3)
    sample_size = exact_max if sample_size is None else _check_count(sample_size, "sample_size", 3)
    k = _check_count(k, "k (neighbours)", 1)
    if n <= exact_max:
        return Tier("exact", method, n, n, exact_max, None)
    n_fit = min(sample_size, n)
    if method == "pca":
        return Tier("sample+transform", method, n, n_fit, exact_max, None)
    return Tier("sample+knn", method, n, n_fit, exact_max, min(k, n_fit))


# ------------------------------------------------------------------------------ backends


def cuml_available() -> bool:
    """Whether cuML imports and a CUDA GPU is present (the optional UMAP backend)."""
    if importlib.util.find_spec("cuml") is None:
        return False
    import torch  # lsx already depends on torch; only here to ask for a GPU

    return bool(torch.cuda.is_available())


def resolve_backend(method: str, backend: str) -> str:
    """``"umap-learn"``, ``"cuml"`` or ``"sklearn"``: the library that fits ``method``.

    Raises
    ------
    ConfigError
        Unknown backend; ``"cuml"`` for a method other than UMAP, or without cuML and a GPU.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    cpu = "umap-learn" if method == "umap" else "sklearn"
    if backend == "cpu":
        return cpu
    if backend == "cuml":
        if method != "umap":
            raise ConfigError(
                f"The cuML backend is offered for UMAP only; {method!r} runs on scikit-learn. "
                "Use backend='auto' or 'cpu'."
            )
        if not cuml_available():
            raise ConfigError(
                "backend='cuml' needs RAPIDS cuML and a CUDA GPU, and this machine has "
                f"{'no CUDA GPU' if importlib.util.find_spec('cuml') else 'no cuML installed'}. "
                "Install cuML (https://docs.rapids.ai/install) on a GPU machine, or use "
                "backend='auto' (umap-learn on the CPU)."
            )
        return "cuml"
    return "cuml" if method == "umap" and cuml_available() else cpu


def _fit_cuml(z: np.ndarray, n_components: int, seed: int | None, params: dict) -> np.ndarray:
    """UMAP fit on the GPU with cuML (same parameters as umap-learn where cuML has them)."""
    from cuml.manifold import UMAP  # optional dependency, GPU only

    kwargs = {
        "n_neighbors": int(min(params["n_neighbors"], len(z) - 1)),
        "min_dist": params["min_dist"],
        "metric": params["metric"],
        "init": params["init"],
        "n_components": n_components,
        "random_state": seed,
    }
    if params.get("n_epochs") is not None:
        kwargs["n_epochs"] = params["n_epochs"]
    coords = UMAP(**kwargs).fit_transform(np.ascontiguousarray(z, dtype=np.float32))
    coords = np.asarray(coords.get() if hasattr(coords, "get") else coords, dtype=np.float32)
    if not np.isfinite(coords).all():
        raise DataShapeError("cuML UMAP came out with NaN/Inf values; try backend='cpu'.")
    return coords


def _fit(z: np.ndarray, method: str, n_components: int, seed, params, backend: str) -> np.ndarray:
    if backend == "cuml":
        return _fit_cuml(z, n_components, seed, params)
    return project(z, method, n_components, seed=seed, **params)


# ------------------------------------------------------------------------------ helpers


def _chunk(z: np.ndarray, rows: np.ndarray | slice, what: str) -> np.ndarray:
    """Rows of ``z`` as float32, checked finite (a memmap is read here, chunk by chunk)."""
    block = np.ascontiguousarray(z[rows], dtype=np.float32)
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise DataShapeError(
            f"z has NaN or Inf values in {int(bad.sum())} of the {len(block)} {what} rows; drop "
            "those rows or re-encode with a model that makes finite latents."
        )
    return block


def draw_sample(
    n: int, size: int, *, labels: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, str]:
    """Indices of the fitted sample and the rule that drew them.

    Parameters
    ----------
    n : int
        Number of points.
    size : int
        Sample size (all points when ``n <= size``).
    labels : ndarray of shape (n,) or None
        Class labels: the sample is spread over the classes (``sample_per_class``).
    seed : int

    Returns
    -------
    indices : ndarray of shape (min(size, n),), int64, sorted
    rule : str
        ``"stratified by label, seed 0"`` or ``"uniform without replacement, seed 0"``.
    """
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise DataShapeError(
                f"labels must have shape ({n},), one label per row of z; got {labels.shape}."
            )
        return sample_per_class(labels, size, seed=seed), f"stratified by label, seed {seed}"
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)
    return idx, f"uniform without replacement, seed {seed}"


def place_by_neighbours(
    index: Any,
    fitted: np.ndarray,
    z: np.ndarray,
    rows: np.ndarray,
    k: int,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
    """Mean fitted position of the ``k`` nearest fitted points of each of ``z[rows]``.

    Parameters
    ----------
    index : KnnIndex
        Built over the fitted sample's latent vectors (``lsx.analysis.knn.build_index``).
    fitted : ndarray of shape (n_fit, n_components)
        Fitted coordinates, in the index's row order.
    z : ndarray or memmap of shape (n, dim)
    rows : ndarray of shape (n_rows,), int
        Rows of ``z`` to place; read ``chunk_size`` at a time.
    k : int

    Returns
    -------
    coords : ndarray of shape (n_rows, n_components), float32
    """
    chunk_size = _check_count(chunk_size, "chunk_size", 1)
    # float32 for maps; float64 coordinates (e.g. a lookup's reference map) stay float64
    out = np.empty((len(rows), fitted.shape[1]), dtype=np.result_type(fitted.dtype, np.float32))
    for start in range(0, len(rows), chunk_size):
        part = rows[start : start + chunk_size]
        ids, _ = index.query(_chunk(z, part, "placed"), k)  # (chunk, k)
        out[start : start + len(part)] = fitted[ids].mean(axis=1)
    return out


# ------------------------------------------------------------------------------ public API


def project_tiered(
    z: np.ndarray,
    method: str,
    n_components: int = 2,
    *,
    seed: int | None = 0,
    labels: np.ndarray | None = None,
    exact_max: int | None = None,
    sample_size: int | None = None,
    k: int = DEFAULT_K,
    params: dict[str, Any] | None = None,
    backend: str = "auto",
    threads: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Project ``z`` exactly up to ``exact_max`` points; above, fit a sample and place the rest.

    Parameters
    ----------
    z : ndarray or np.memmap of shape (n, dim)
        Finite latent vectors (read in chunks; never copied whole unless the tier is exact).
    method : {"pca", "umap", "tsne"}
    n_components : {2, 3}
    seed : int or None
        Seed of the fit and of the sample (None: fast non-reproducible fit; sample seed 0).
    labels : ndarray of shape (n,) or None
        Class labels; the fitted sample is stratified by them.
    exact_max, sample_size, k
        See :func:`plan_projection`.
    params : dict or None
        Overrides of ``PROJECTIONS[method].defaults``.
    backend : {"auto", "cpu", "cuml"}
        ``auto``: cuML for UMAP when cuML and a CUDA GPU are present, else umap-learn /
        scikit-learn. ``cpu``: always the CPU reference. ``cuml``: cuML or a ConfigError.
    threads : int
        FAISS threads of the neighbour search.
    chunk_size : int
        Rows of ``z`` read per step (placement and PCA transform).

    Returns
    -------
    coords : ndarray of shape (n, n_components), float32
    info : dict
        For the projection's manifest: ``tier``, ``method``, ``backend``, ``n_points``,
        ``n_fit``, ``n_components``, ``seed``, ``params``, ``exact_max``, ``sample`` (rule,
        size; None when exact), ``placement`` (rule, k, knn index info; None unless
        sample+knn), ``seconds`` per stage and ``describe`` (the UI sentence).

    Raises
    ------
    ConfigError
        Bad method, parameters, sizes, seed or backend (cuML asked for but not usable).
    DataShapeError
        ``z`` not 2-D, too few rows, NaN/Inf values, or labels of the wrong length.
    """
    resolved = check_request(method, n_components, seed, params)
    if not hasattr(z, "shape") or len(z.shape) != 2:
        raise DataShapeError(
            f"z must be a 2-D array of shape (n_points, dim); got shape {getattr(z, 'shape', '?')}."
        )
    n = int(z.shape[0])
    tier = plan_projection(n, method, exact_max=exact_max, sample_size=sample_size, k=k)
    used = resolve_backend(method, backend)
    seconds: dict[str, float] = {}
    start = t0 = time.perf_counter()
    info: dict[str, Any] = {
        "tier": tier.name,
        "method": method,
        "backend": used,
        "n_points": n,
        "n_fit": tier.n_fit,
        "n_components": int(n_components),
        "seed": None if seed is None else int(seed),
        "params": resolved,
        "exact_max": tier.exact_max,
        "sample": None,
        "placement": None,
        "describe": tier.describe(),
    }
    if tier.name == "exact":
        coords = _fit(_chunk(z, slice(None), "fitted"), method, n_components, seed, resolved, used)
        seconds["fit"] = time.perf_counter() - t0
    else:
        sample_seed = 0 if seed is None else int(seed)
        idx, rule = draw_sample(n, tier.n_fit, labels=labels, seed=sample_seed)
        z_fit = _chunk(z, idx, "sampled")  # (n_fit, dim): fancy indexing reads only these rows
        info["sample"] = {"rule": rule, "size": len(idx), "seed": sample_seed}
        seconds["sample"] = time.perf_counter() - t0
        rest = np.setdiff1d(np.arange(n, dtype=np.int64), idx, assume_unique=True)
        coords = np.empty((n, n_components), dtype=np.float32)
        if tier.name == "sample+transform":
            t0 = time.perf_counter()
            coords[:] = _pca_transform(z, z_fit, n_components, seed, resolved, chunk_size)
            seconds["fit_and_transform"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            fitted = _fit(z_fit, method, n_components, seed, resolved, used)
            seconds["fit"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            index = build_index(z_fit, threads=threads)
            seconds["index"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            coords[idx] = fitted  # sampled points keep their fitted coordinates
            coords[rest] = place_by_neighbours(
                index, fitted, z, rest, tier.k, chunk_size=chunk_size
            )
            seconds["place"] = time.perf_counter() - t0
            dims = f"{n_components}-D"
            info["placement"] = {
                "rule": f"mean of the {dims} positions of the k={tier.k} nearest fitted points "
                "in latent space",
                "k": tier.k,
                "n_placed": len(rest),
                "knn": index.info,
            }
    seconds["total"] = time.perf_counter() - start
    info["seconds"] = {name: round(s, 4) for name, s in seconds.items()}
    return np.asarray(coords, dtype=np.float32), info


def _pca_transform(
    z: np.ndarray,
    z_fit: np.ndarray,
    n_components: int,
    seed: int | None,
    params: dict[str, Any],
    chunk_size: int,
) -> np.ndarray:
    """PCA fitted on ``z_fit`` applied to every row of ``z``, chunk by chunk (zero-padded)."""
    from sklearn.decomposition import PCA

    n_pc = min(n_components, z_fit.shape[1], z_fit.shape[0])
    pca = PCA(n_components=n_pc, random_state=seed, **params).fit(z_fit)
    out = np.zeros((len(z), n_components), dtype=np.float32)
    for start in range(0, len(z), _check_count(chunk_size, "chunk_size", 1)):
        block = _chunk(z, slice(start, start + chunk_size), "transformed")
        out[start : start + len(block), :n_pc] = pca.transform(block)
    return out
