"""2-D/3-D maps of latent vectors (PCA, UMAP, t-SNE) and class-balanced subsampling.

Pure functions: arrays in, float32 arrays out, the seed is an argument. Every method lives in the
registry :data:`PROJECTIONS` (name -> fitter, default parameters, one-line summary), which the app's
picker, the on-disk cache (:mod:`lsx.cache`) and the tests iterate over.

``import umap`` happens inside the UMAP fitter only: importing lsx must not pay umap's import and
numba JIT cost. Inputs are cast to float32 because numba compiles every dtype again.

Progress: inside ``with reporting_progress(callback):`` the fitters report ``callback(stage,
done, total)`` (UMAP: "neighbours", then "epochs" with umap-learn's epoch count; t-SNE:
"fitting"). Like ``sklearn.config_context``, the callback lives in a context variable, so it
belongs to the calling thread only and the fitters' signatures stay as they are.

Seeds: an int seed makes every method reproducible (UMAP then runs single-threaded, which
umap-learn forces anyway when ``random_state`` is set); ``seed=None`` is the explicit fast mode
(UMAP in parallel, results differ run to run).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from lsx.errors import ConfigError, DataShapeError

MIN_POINTS = 3
PYNNDESCENT_FROM = 4096  # umap-learn uses exact kNN below this many points, pynndescent above
WARMUP_POINTS = 4608  # > PYNNDESCENT_FROM: a warm-up compiles what a 5,000-point fit needs

ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total)
_PROGRESS: ContextVar[ProgressCallback | None] = ContextVar("lsx_projection_progress", default=None)


@contextmanager
def reporting_progress(callback: ProgressCallback) -> Iterator[None]:
    """Within the block, projections in this thread report ``callback(stage, done, total)``.

    Parameters
    ----------
    callback : callable
        Called with ``("neighbours", 0, 0)`` and ``("epochs", n, n_epochs)`` by UMAP and with
        ``("fitting", 0, 0)`` by t-SNE. It must be quick and must not raise.
    """
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _report(stage: str, done: int = 0, total: int = 0) -> None:
    callback = _PROGRESS.get()
    if callback is not None:
        callback(stage, done, total)


class _EpochSink:
    """A file for umap-learn's tqdm bar (``bar_format="{n}/{total}"``): each write reports the
    epochs done to the progress callback."""

    pattern = re.compile(r"(\d+)/(\d+)")

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback

    def write(self, text: str) -> int:
        found = self.pattern.findall(text)
        if found:
            done, total = found[-1]
            self.callback("epochs", int(done), int(total))
        return len(text)

    def flush(self) -> None:
        pass


def _pad_columns(a: np.ndarray, n_columns: int) -> np.ndarray:
    """Append zero columns up to ``n_columns`` (distances between rows are unchanged)."""
    if a.shape[1] >= n_columns:
        return a
    return np.hstack([a, np.zeros((len(a), n_columns - a.shape[1]), dtype=a.dtype)])


def _pca(z: np.ndarray, n_components: int, seed: int | None, params: dict[str, Any]) -> np.ndarray:
    from sklearn.decomposition import PCA

    # PCA has at most min(n_samples, n_features) components; the rest are zero coordinates.
    k = min(n_components, z.shape[1], z.shape[0])
    coords = PCA(n_components=k, random_state=seed, **params).fit_transform(z)  # (n, k)
    return _pad_columns(coords, n_components)


def _umap(z: np.ndarray, n_components: int, seed: int | None, params: dict[str, Any]) -> np.ndarray:
    p = dict(params)
    n_neighbors, min_dist = p["n_neighbors"], p["min_dist"]
    if (
        not isinstance(n_neighbors, int | np.integer)
        or isinstance(n_neighbors, bool)
        or n_neighbors < 2
    ):
        raise ConfigError(f"UMAP n_neighbors must be an int >= 2; got {n_neighbors!r}.")
    if not isinstance(min_dist, int | float) or not 0.0 <= min_dist <= 1.0:
        raise ConfigError(f"UMAP min_dist must be a number in [0, 1]; got {min_dist!r}.")
    p["n_neighbors"] = int(min(n_neighbors, len(z) - 1))  # umap-learn would warn and do the same
    import umap  # here only: importing lsx must not import umap (numba JIT, ~2-18 s)

    if p["init"] == "spectral" and len(z) <= n_components + 2:
        p["init"] = "random"  # spectral needs n_components + 1 eigenvectors of an n x n graph
    z = _pad_columns(z, n_components)
    n_jobs = 1 if seed is not None else -1  # umap-learn forces 1 with a seed; say so, no warning
    kwargs = dict(p, n_components=n_components, random_state=seed, n_jobs=n_jobs)
    callback = _PROGRESS.get()
    if callback is not None:  # umap-learn reports epochs through tqdm; read them from its bar
        callback("neighbours", 0, 0)
        kwargs["tqdm_kwds"] = {
            "disable": False, "file": _EpochSink(callback), "bar_format": "{n}/{total}",
            "mininterval": 0.25,
        }  # fmt: skip
    try:
        return umap.UMAP(**kwargs).fit_transform(z)
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
        # spectral init can fail on disconnected kNN graphs (lmcinnes/umap#1026): retry once with
        # a random init; if that fails too, the error surfaces.
        if kwargs["init"] != "spectral":
            raise
        warnings.warn(f"UMAP spectral init failed ({err}); using init='random'.", stacklevel=3)
        return umap.UMAP(**{**kwargs, "init": "random"}).fit_transform(z)


def _tsne(z: np.ndarray, n_components: int, seed: int | None, params: dict[str, Any]) -> np.ndarray:
    from sklearn.manifold import TSNE

    p = dict(params)
    if not isinstance(p["perplexity"], int | float) or not p["perplexity"] > 0:
        raise ConfigError(f"t-SNE perplexity must be a number > 0; got {p['perplexity']!r}.")
    # sklearn needs perplexity < n_samples; about 3 * perplexity neighbours are used, so cap it.
    p["perplexity"] = float(max(1.0, min(p["perplexity"], (len(z) - 1) / 3)))
    z = _pad_columns(z, n_components)  # init="pca" needs n_features >= n_components
    tsne = TSNE(n_components=n_components, init="pca", random_state=seed, **p)
    _report("fitting")  # sklearn reports iterations only by printing: elapsed time only
    return tsne.fit_transform(z)


@dataclass(frozen=True)
class ProjectionSpec:
    """One projection method: its fitter, default parameters and a one-line summary."""

    fit: Callable[[np.ndarray, int, int | None, dict[str, Any]], np.ndarray]
    defaults: Mapping[str, Any]
    summary: str  # one line, shown next to the method in the app


PROJECTIONS: dict[str, ProjectionSpec] = {
    "pca": ProjectionSpec(
        _pca, MappingProxyType({"whiten": False}), "PCA: linear, fast, keeps global distances"
    ),
    "umap": ProjectionSpec(
        _umap,
        MappingProxyType(
            {
                "n_neighbors": 15,
                "min_dist": 0.1,
                "metric": "euclidean",
                "init": "spectral",
                "n_epochs": None,
            }
        ),
        "UMAP: non-linear, keeps local neighbourhoods and some global structure",
    ),
    "tsne": ProjectionSpec(
        _tsne,
        MappingProxyType(
            {"perplexity": 30.0, "max_iter": 1000, "metric": "euclidean", "learning_rate": "auto"}
        ),
        "t-SNE: non-linear, keeps local neighbourhoods; distances between clusters mean little",
    ),
}


def resolve_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The method's default parameters updated with ``params`` (sorted keys).

    Raises
    ------
    ConfigError
        Unknown method, or a parameter the method does not take.
    """
    if method not in PROJECTIONS:
        raise ConfigError(
            f"Unknown projection method {method!r}; known methods: "
            f"{', '.join(sorted(PROJECTIONS))}."
        )
    defaults = PROJECTIONS[method].defaults
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise ConfigError(
            f"The {method!r} projection has no parameter(s) {unknown}; known parameters: "
            f"{sorted(defaults)}."
        )
    return dict(sorted({**defaults, **(params or {})}.items()))


def check_latents(z: np.ndarray, name: str = "z", min_rows: int = MIN_POINTS) -> np.ndarray:
    """``z`` as C-contiguous float32 of shape (n_samples, n_features); DataShapeError otherwise."""
    z = np.asarray(z)
    if z.ndim != 2 or not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
        raise DataShapeError(
            f"{name} must be a real 2-D array of shape (n_samples, n_features); got dtype "
            f"{z.dtype} and shape {z.shape}. Flatten spatial latents first (encode_array does)."
        )
    if len(z) < min_rows or z.shape[1] < 1:
        raise DataShapeError(
            f"{name} has shape {z.shape}; a projection needs at least {min_rows} points with at "
            "least 1 feature. Select more points."
        )
    z = np.ascontiguousarray(z, dtype=np.float32)
    bad = ~np.isfinite(z).all(axis=1)
    if bad.any():
        raise DataShapeError(
            f"{name} has NaN or Inf values in {int(bad.sum())} of {len(z)} rows (first: row "
            f"{int(np.flatnonzero(bad)[0])}); drop those rows or retrain the model that made them."
        )
    return z


def check_request(
    method: str, n_components: int, seed: int | None, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate a projection request; return the resolved parameters (see :func:`resolve_params`).

    Raises
    ------
    ConfigError
        Unknown method or parameter, ``n_components`` not 2 or 3, or a seed that is neither an
        int in [0, 2**32) nor None.
    """
    resolved = resolve_params(method, params)
    if (
        not isinstance(n_components, int | np.integer)
        or isinstance(n_components, bool)
        or n_components not in (2, 3)
    ):
        raise ConfigError(f"n_components must be 2 or 3 (a 2-D or 3-D map); got {n_components!r}.")
    if seed is not None and (
        not isinstance(seed, int | np.integer) or isinstance(seed, bool) or not 0 <= seed < 2**32
    ):
        raise ConfigError(
            f"seed must be an int in [0, 2**32) (reproducible) or None (fast, not reproducible); "
            f"got {seed!r}."
        )
    return resolved


def project(
    z: np.ndarray,
    method: str = "pca",
    n_components: int = 2,
    *,
    seed: int | None = 0,
    **params: Any,
) -> np.ndarray:
    """Map latent vectors to 2-D or 3-D coordinates.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_features)
        At least 3 finite rows; cast to float32.
    method : {"pca", "umap", "tsne"}, default="pca"
        A key of :data:`PROJECTIONS`.
    n_components : {2, 3}, default=2
    seed : int or None, default=0
        ``random_state`` of the method. None: fast, non-reproducible mode.
    **params
        Overrides of ``PROJECTIONS[method].defaults`` (e.g. ``n_neighbors=30`` for UMAP).

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components), float32

    Notes
    -----
    If ``z`` has fewer features than ``n_components`` (e.g. a 2-D latent asked in 3-D), PCA
    returns zeros in the extra coordinates; UMAP and t-SNE get ``z`` padded with zero columns,
    which leaves all distances unchanged. UMAP's ``n_neighbors`` is capped at ``n_samples - 1`` and
    t-SNE's ``perplexity`` at ``(n_samples - 1) / 3``, so small selections still project.

    Raises
    ------
    ConfigError
        Unknown method or parameter, ``n_components`` not 2 or 3, bad seed or parameter value.
    DataShapeError
        ``z`` not 2-D, fewer than 3 rows, NaN/Inf values, all rows identical, or a
        projection that came out non-finite.
    """
    resolved = check_request(method, n_components, seed, params)
    seed = None if seed is None else int(seed)
    z = check_latents(z)
    if not np.ptp(z, axis=0).any():  # sklearn's t-SNE segfaults on this; refuse it for all
        raise DataShapeError(
            f"All {len(z)} latent vectors are identical, so there is nothing to project; the model "
            "may have collapsed (check z.std(axis=0)) or the selection holds copies of one image."
        )
    from sklearn.utils._param_validation import InvalidParameterError  # sklearn's own checks

    try:
        coords = PROJECTIONS[method].fit(z, n_components, seed, resolved)
    except InvalidParameterError as err:  # e.g. tsne max_iter=10: the user's value, not a bug
        raise ConfigError(f"Invalid parameter for the {method!r} projection: {err}") from err
    coords = np.asarray(coords, dtype=np.float32)
    assert coords.shape == (len(z), n_components), coords.shape  # fitter contract
    if not np.isfinite(coords).all():
        raise DataShapeError(
            f"The {method} projection of z (shape {z.shape}) came out with NaN/Inf values; the "
            "latents may be nearly identical (a collapsed model?). Check z.std(axis=0) or try "
            "'pca'."
        )
    return coords


def warm_up_umap(n_points: int = WARMUP_POINTS, *, n_epochs: int = 10, seed: int = 0) -> None:
    """Pay numba's JIT of a UMAP fit once: a short fit on synthetic points, same code path.

    umap-learn computes exact neighbours below 4,096 points and pynndescent above, so a
    warm-up on fewer points would leave the expensive compilation to the first real fit. The
    default takes the pynndescent path with a seed (single-threaded, as :func:`project` runs
    with an int seed), so it compiles what a seeded fit of a 5,000-point demo run needs.

    Parameters
    ----------
    n_points : int, default=4608
        Synthetic points (> 4,096 for the pynndescent path).
    n_epochs : int, default=10
        Few: the layout's epoch function compiles on its first epoch.
    seed : int, default=0
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(10, 16))
    z = centres[rng.integers(0, 10, n_points)] + rng.normal(size=(n_points, 16))
    project(z.astype(np.float32), "umap", 2, seed=seed, n_epochs=n_epochs)


def _fair_quota(counts: np.ndarray, cap: int) -> np.ndarray:
    """Per-class sizes summing to ``min(cap, counts.sum())``, as equal as the counts allow."""
    quota = np.zeros_like(counts)
    remaining = cap
    order = np.argsort(counts, kind="stable")  # small classes first: their unused share flows on
    for i, k in enumerate(order):
        quota[k] = min(counts[k], remaining // (len(order) - i))
        remaining -= quota[k]
    return quota


def sample_per_class(y: np.ndarray, cap: int, *, seed: int = 0) -> np.ndarray:
    """At most ``cap`` indices, spread as evenly as possible over the classes of ``y``.

    Each class gets ``cap / n_classes`` points; a class with fewer points gives its unused share
    to the others (rounding remainders go to the larger classes). Within a class the points are
    drawn without replacement by ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class labels (any sortable dtype).
    cap : int
        Largest number of indices to return (>= 1).
    seed : int, default=0

    Returns
    -------
    indices : ndarray of shape (min(cap, n_samples),), int64, sorted ascending
        All of ``arange(n_samples)`` when ``n_samples <= cap``.

    Raises
    ------
    DataShapeError
        ``y`` is not 1-D.
    ConfigError
        ``cap`` is not an int >= 1.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataShapeError(f"y must be 1-D labels of shape (n_samples,); got shape {y.shape}.")
    if not isinstance(cap, int | np.integer) or isinstance(cap, bool) or cap < 1:
        raise ConfigError(f"cap must be an int >= 1 (the most points to keep); got {cap!r}.")
    if len(y) <= cap:
        return np.arange(len(y), dtype=np.int64)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = _fair_quota(counts, int(cap))
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(inverse == k), size=int(q), replace=False)
        for k, q in enumerate(quota)
        if q > 0
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)
