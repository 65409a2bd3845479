"""Nearest-neighbour search in latent space: exact below a size threshold, an index library above.

One entry point, :func:`build_index`, returns a :class:`KnnIndex` whose ``query`` gives the ``k``
nearest database rows of each query row (Euclidean), nearest first. The method is chosen by the
database size:

- ``"exact"`` (n_db <= ``exact_max``, or few queries: n_queries * n_db <= ``EXACT_WORK_MAX``):
  brute force, blocked so memory stays bounded; FAISS's
  ``IndexFlatL2`` when FAISS is installed, NumPy otherwise. Same answers as ``cdist`` + argsort.
- ``"hnsw"`` (n_db > ``exact_max``): FAISS ``IndexHNSWFlat`` (approximate; recall is measured in
  ``bench/scale.py`` and tested on a fixed seed). Indexes are never saved or unpickled: they are
  rebuilt from the stored vectors (pynndescent persists by pickle, which lsx never loads).

Pure: arrays in, arrays out; nothing global is changed except FAISS's OpenMP thread count, which
is set per call from ``threads``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsx.errors import ConfigError, DataShapeError

EXACT_MAX = 50_000  # database rows searched exactly; above this an HNSW index is built ...
EXACT_WORK_MAX = 2 * 10**8  # ... unless the caller expects few queries: n_queries * n_db below
# this stays exact (1 query on 1M x 64 float32: ~8 ms flat on one core, no index build)
HNSW_M = 32  # graph degree (FAISS default 32): recall vs memory
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # raised to k when k is larger
_QUERY_BLOCK = 4096  # exact NumPy search: queries per block (bounds the distance matrix)
METHODS = ("auto", "exact", "hnsw")


def faiss_available() -> bool:
    """Whether FAISS can be imported (``faiss-cpu`` is in requirements.txt)."""
    return importlib.util.find_spec("faiss") is not None


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number) or a.shape[1] < 1:
        raise DataShapeError(
            f"{name} must be a 2-D numeric array (n_rows, n_features); got {a.dtype} {a.shape}."
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise DataShapeError(f"{name} holds NaN or Inf values; search finite vectors only.")
    return a


@dataclass
class KnnIndex:
    """A searchable set of latent vectors; build it with :func:`build_index`."""

    method: str  # "exact" or "hnsw"
    backend: str  # "faiss" or "numpy"
    n_db: int
    dim: int
    threads: int
    _db: np.ndarray = field(repr=False)
    _index: Any = field(default=None, repr=False)

    @property
    def info(self) -> dict[str, Any]:
        """What a manifest records about the search (method, backend, size, parameters)."""
        out: dict[str, Any] = {
            "method": self.method,
            "backend": self.backend,
            "n_db": self.n_db,
            "dim": self.dim,
        }
        if self.method == "hnsw":
            out.update(m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, ef_search=HNSW_EF_SEARCH)
        return out

    def query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest database rows of every query row.

        Parameters
        ----------
        q : ndarray of shape (n_queries, dim)
        k : int
            1 <= k; capped at the database size.

        Returns
        -------
        ids : ndarray of shape (n_queries, k'), int64, nearest first (k' = min(k, n_db))
        distances : ndarray of shape (n_queries, k'), float64, Euclidean, computed directly
            for the found pairs (not from the search's float32 expansion)
        """
        q = _as_matrix(q, "queries")
        if q.shape[1] != self.dim:
            raise DataShapeError(
                f"Queries have {q.shape[1]} features but the index holds {self.dim}-dimensional "
                "vectors; encode the queries with the same checkpoint."
            )
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"k (neighbours) must be an int >= 1; got {k!r}.")
        k = int(min(k, self.n_db))
        if self._index is None:
            ids, _ = _numpy_search(self._db, q, k)
        else:
            import faiss

            faiss.omp_set_num_threads(self.threads)
            if self.method == "hnsw":
                self._index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
            ids = self._index.search(q, k)[1].astype(np.int64)
        return _exact_distances(self._db, q, ids)

    def neighbours_of_rows(self, k: int) -> np.ndarray:
        """k nearest neighbours of every database row, the row itself excluded: (n_db, k) int64.

        Under ties (duplicate rows) the row is not always first; it is dropped wherever it is.
        """
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or not 1 <= k < self.n_db:
            raise ConfigError(
                f"k (neighbours per point) must be an int in [1, n_rows - 1 = {self.n_db - 1}]; "
                f"got {k!r}."
            )
        ids, _ = self.query(self._db, int(k) + 1)
        not_self = ids != np.arange(self.n_db)[:, None]
        first = np.argsort(~not_self, axis=1, kind="stable")[:, : int(k)]
        return np.take_along_axis(ids, first, axis=1)


def _exact_distances(
    db: np.ndarray, q: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distances of the found neighbours computed directly in float64 (the ``|q|^2 - 2 q.d +
    |d|^2`` expansion used for searching loses ~1e-3 near zero in float32), re-sorted by them."""
    out = np.empty(ids.shape, dtype=np.float64)
    for start in range(0, len(q), _QUERY_BLOCK):
        sl = slice(start, start + _QUERY_BLOCK)
        diff = db[ids[sl]].astype(np.float64) - q[sl, None, :].astype(np.float64)
        out[sl] = np.sqrt((diff**2).sum(-1))
    order = np.lexsort((ids, out), axis=1)  # by distance, then by index
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(out, order, axis=1)


def _numpy_search(db: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    db_sq = (db.astype(np.float64) ** 2).sum(1)
    ids_out = np.empty((len(q), k), dtype=np.int64)
    dist_out = np.empty((len(q), k), dtype=np.float32)
    for start in range(0, len(q), _QUERY_BLOCK):
        qb = q[start : start + _QUERY_BLOCK].astype(np.float64)
        d2 = (qb**2).sum(1)[:, None] - 2.0 * qb @ db.T.astype(np.float64) + db_sq[None, :]
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(db) else None
        if part is None:
            part = np.broadcast_to(np.arange(len(db)), (len(qb), len(db))).copy()
        vals = np.take_along_axis(d2, part, axis=1)
        order = np.lexsort((part, vals), axis=1)  # by distance, then by index (deterministic)
        ids_out[start : start + len(qb)] = np.take_along_axis(part, order, axis=1)
        dist_out[start : start + len(qb)] = np.sqrt(
            np.maximum(np.take_along_axis(vals, order, axis=1), 0.0)
        )
    return ids_out, dist_out


def choose_method(
    n_db: int, method: str = "auto", exact_max: int = EXACT_MAX, n_queries: int | None = None
) -> str:
    """``"exact"`` or ``"hnsw"`` for a database of ``n_db`` rows (see the module docstring);
    ``n_queries``, when known and small, keeps a large database exact (no index build)."""
    if method not in METHODS:
        raise ConfigError(f"kNN method must be one of {', '.join(METHODS)}; got {method!r}.")
    if method != "auto":
        return method
    if n_db <= exact_max or (n_queries is not None and n_queries * n_db <= EXACT_WORK_MAX):
        return "exact"
    return "hnsw"


def build_index(
    z_db: np.ndarray,
    *,
    method: str = "auto",
    exact_max: int = EXACT_MAX,
    threads: int = 1,
    n_queries: int | None = None,
) -> KnnIndex:
    """Index ``z_db`` for nearest-neighbour queries.

    Parameters
    ----------
    z_db : ndarray of shape (n_db, dim)
        Finite vectors; cast to float32 (a memory-mapped array is read once, in full).
    method : {"auto", "exact", "hnsw"}
        ``auto``: exact up to ``exact_max`` rows, HNSW above.
    exact_max : int
    threads : int
        FAISS OpenMP threads for building and searching. HNSW levels come from FAISS's fixed
        RNG; with ``threads > 1`` two builds of one database can differ in a few edges.
    n_queries : int, optional
        How many queries will follow, when known: a few queries on a large database are
        answered exactly (see :data:`EXACT_WORK_MAX`).

    Raises
    ------
    ConfigError
        Unknown method, or ``hnsw`` asked for without FAISS installed.
    DataShapeError
        ``z_db`` is not a finite 2-D array with at least one row.
    """
    db = _as_matrix(z_db, "z_db")
    if len(db) < 1:
        raise DataShapeError("The kNN database is empty; encode at least one sample.")
    chosen = choose_method(len(db), method, exact_max, n_queries)
    has_faiss = faiss_available()
    if chosen == "hnsw" and not has_faiss:
        raise ConfigError(
            "An HNSW index needs FAISS: pip install -r requirements.txt (faiss-cpu), or search "
            "exactly with method='exact'."
        )
    index = None
    if has_faiss:
        import faiss

        faiss.omp_set_num_threads(int(threads))
        if chosen == "exact":
            index = faiss.IndexFlatL2(db.shape[1])
        else:
            index = faiss.IndexHNSWFlat(db.shape[1], HNSW_M)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(db)
    return KnnIndex(
        method=chosen,
        backend="faiss" if has_faiss else "numpy",
        n_db=len(db),
        dim=db.shape[1],
        threads=int(threads),
        _db=db,
        _index=index,
    )


def knn(
    z_db: np.ndarray, z_query: np.ndarray, k: int, **build: Any
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One-shot :func:`build_index` + ``query``: (ids, distances, index info)."""
    index = build_index(z_db, **build)
    ids, dist = index.query(z_query, k)
    return ids, dist, index.info
