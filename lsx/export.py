"""Export a selection or a tag of a run's samples as a table (CSV, Parquet) or its latents (.npy).

A table has one row per sample: ``id`` (train first, then test), ``split``, ``index`` (within
the split), one ``label_<attribute>`` column per label attribute, the latent vector
(``z_0 .. z_{d-1}``), the map coordinates (``map_1``, ``map_2`` [, ``map_3``]), the
reconstruction error (``recon_error``, per-sample MSE) and ``tag``. The Latent map page's
download buttons, ``python -m lsx export`` and the API share :func:`export_table` and
:func:`table_bytes`; :func:`export_run` does the whole job from a run folder, reading the same
on-disk embedding and projection cache as the app (``<run_dir>/cache/``).

Parquet goes through pandas + pyarrow; files are written atomically (:mod:`lsx.files`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsx.errors import ConfigError, DataShapeError
from lsx.files import atomic_write_bytes

FORMATS = ("csv", "parquet", "npy")


def _empty(what: str) -> ConfigError:
    return ConfigError(
        f"Nothing to export: {what} is empty (0 samples). Select points on the map or pick a tag "
        "with members first."
    )


def export_table(
    ids: np.ndarray,
    n_train: int,
    labels: Mapping[str, np.ndarray],
    z: np.ndarray,
    coords: np.ndarray,
    recon_error: np.ndarray,
    tag: str | Sequence[str] = "",
) -> pd.DataFrame:
    """One row per sample, in the order of ``ids``.

    Parameters
    ----------
    ids : ndarray of shape (n,)
        Sample ids (train first, then test).
    n_train : int
        Size of the train split (ids >= n_train are test samples).
    labels : mapping attribute -> ndarray of shape (n,)
        Class names (or codes) per row.
    z : ndarray of shape (n, latent_numel)
    coords : ndarray of shape (n, n_components)
    recon_error : ndarray of shape (n,)
    tag : str or sequence of str
        One tag for all rows, or one per row.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ConfigError
        No rows.
    DataShapeError
        Arrays of different lengths.
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size == 0:
        raise _empty("the selection")
    z, coords = np.asarray(z), np.asarray(coords)
    arrays = {"z": z, "coords": coords, "recon_error": np.asarray(recon_error)}
    arrays.update({f"label {a}": np.asarray(v) for a, v in labels.items()})
    bad = {k: len(v) for k, v in arrays.items() if len(v) != len(ids)}
    if bad or z.ndim != 2 or coords.ndim != 2:
        raise DataShapeError(
            f"Every column needs one row per id ({len(ids)}); got lengths {bad}, z of shape "
            f"{z.shape} and coords of shape {coords.shape}."
        )
    cols: dict[str, object] = {
        "id": ids,
        "split": np.where(ids < n_train, "train", "test"),
        "index": np.where(ids < n_train, ids, ids - n_train),
    }
    cols.update({f"label_{a}": np.asarray(v) for a, v in labels.items()})
    cols.update({f"z_{j}": z[:, j].astype(np.float32) for j in range(z.shape[1])})
    cols.update({f"map_{j + 1}": coords[:, j].astype(np.float32) for j in range(coords.shape[1])})
    cols["recon_error"] = np.asarray(recon_error, dtype=np.float32)
    cols["tag"] = [tag] * len(ids) if isinstance(tag, str) else list(tag)
    return pd.DataFrame(cols)


def latent_columns(frame: pd.DataFrame) -> np.ndarray:
    """The latent vectors of an exported table, ``(n, latent_numel)`` float32."""
    names = sorted((c for c in frame.columns if c.startswith("z_")), key=lambda c: int(c[2:]))
    return frame[names].to_numpy(dtype=np.float32)


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The table as CSV (UTF-8) or Parquet (pyarrow) bytes, or its latents as ``.npy``.

    Raises
    ------
    ConfigError
        Unknown format or an empty table.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if len(frame) == 0:
        raise _empty("the table")
    buf = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buf, index=False)
    elif fmt == "parquet":
        frame.to_parquet(buf, index=False, engine="pyarrow")
    else:
        np.save(buf, latent_columns(frame), allow_pickle=False)
    return buf.getvalue()


def write_table(frame: pd.DataFrame, path: Path | str, fmt: str | None = None) -> Path:
    """Write the table atomically; the format defaults to the file's suffix. Returns the path."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    atomic_write_bytes(path, table_bytes(frame, fmt))
    return path


def read_table(path: Path | str) -> pd.DataFrame:
    """Read an exported CSV or Parquet table back (for tests and notebooks)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path, engine="pyarrow")
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    raise ConfigError(f"Cannot read {path.name}: use a .csv or .parquet file.")


def export_run(
    run_dir: Path | str,
    *,
    tag: str | None = None,
    ids: Sequence[int] | None = None,
    method: str = "pca",
    seed: int = 0,
    n_components: int = 2,
) -> pd.DataFrame:
    """The export table of a tag (or ids) of a run, from its checkpoint, data and cache.

    Parameters
    ----------
    run_dir : Path or str
    tag : str or None
        A tag of the run (:mod:`lsx.tags`); or
    ids : sequence of int or None
        Sample ids. Neither: every sample.
    method, seed, n_components
        The map whose coordinates go into ``map_*`` (cached on disk; UMAP and t-SNE are fitted
        once when missing, which takes a while).

    Returns
    -------
    pandas.DataFrame
    """
    from lsx.cache import cached_embedding, cached_projection, default_cache_dir
    from lsx.checkpoint import load_checkpoint, read_header, weights_sha256
    from lsx.data import load_dataset
    from lsx.tags import tag_ids

    run_dir = Path(run_dir)
    model, _ = load_checkpoint(run_dir)
    model.eval().requires_grad_(False)
    data = read_header(run_dir).get("data") or {}
    if not data.get("spec"):
        raise ConfigError(f"{run_dir} records no dataset; only runs trained by lsx export.")
    ds = load_dataset(
        data["spec"], image_size=data.get("image_size"), seed=int(data.get("seed", 0))
    )
    sha, cache_dir = weights_sha256(run_dir), default_cache_dir(run_dir)
    parts = [
        cached_embedding(cache_dir, model=model, checkpoint_sha=sha, data_hash=ds.content_hash,
                         split=s, x=ds.split(s)[0])[0]
        for s in ("train", "test")
    ]  # fmt: skip
    z = np.concatenate([p.z for p in parts])
    err = np.concatenate([p.recon_error for p in parts])
    coords, _, _ = cached_projection(
        cache_dir, z=z, checkpoint_sha=sha, data_hash=ds.content_hash, split="all",
        method=method, n_components=n_components, seed=seed,
    )  # fmt: skip
    chosen = tag_ids(run_dir, tag) if tag is not None else ids
    chosen = np.arange(len(z)) if chosen is None else np.asarray(chosen, dtype=np.int64)
    if chosen.size and (chosen.min() < 0 or chosen.max() >= len(z)):
        raise ConfigError(
            f"Sample ids must be in 0..{len(z) - 1}; got {chosen.min()}..{chosen.max()}."
        )
    n_train = len(ds.x_train)
    labels = {
        a: np.asarray(names, dtype=object)[
            np.concatenate([ds.labels_train[a], ds.labels_test[a]])[chosen]
        ]
        for a, names in ds.label_names.items()
    }
    return export_table(chosen, n_train, labels, z[chosen], coords[chosen], err[chosen], tag or "")


def store_table(
    store: Any,
    ids: Sequence[int] | np.ndarray,
    coords: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    outlier: np.ndarray | None = None,
    tag: str | Sequence[str] = "",
) -> pd.DataFrame:
    """One row per selected row of a latent store (:class:`lsx.latents.LatentStore`).

    Columns: ``id`` (the store's row), ``row`` (the source's row), ``label_<attribute>`` (class
    names), ``z_*``, ``map_1``, ``map_2``, ``recon_error`` (left out when the store has no
    decoder: an embedding set), ``cluster`` and ``outlier_score`` when given (every row of the
    store, e.g. :class:`lsx.latents.structure.StoreStructure`'s), ``tag``. ``coords``: the map of
    every row of the store.
    """
    keep = np.asarray(ids, dtype=np.int64).reshape(-1)
    if keep.size == 0:
        raise _empty("the selection")
    if keep.min() < 0 or keep.max() >= store.n:
        raise ConfigError(
            f"Ids must be store rows 0..{store.n - 1}; got {keep.min()}..{keep.max()}."
        )
    order = np.argsort(keep, kind="stable")  # memory maps read fastest in row order
    rows = keep[order]
    labels = {
        a: np.asarray(names, dtype=object)[np.asarray(store.labels[a][rows])]
        for a, names in store.label_names.items()
    }
    tags = tag if isinstance(tag, str) else np.asarray(tag, dtype=object)[order]
    frame = export_table(
        rows, store.n, labels, np.asarray(store.z[rows]), np.asarray(coords[rows]),
        np.asarray(store.recon_error[rows]), tags,
    )  # fmt: skip
    frame = frame.drop(columns=["split", "index"])  # a store has one split (in its manifest)
    frame.insert(1, "row", np.asarray(store.rows[rows]))
    if not np.isfinite(frame["recon_error"]).any():  # an embedding set: no decoder
        frame = frame.drop(columns=["recon_error"])
    at = frame.columns.get_loc("tag")
    if outlier is not None:
        frame.insert(at, "outlier_score", np.asarray(outlier)[rows].astype(np.float32))
    if clusters is not None:
        frame.insert(at, "cluster", np.asarray(clusters)[rows].astype(np.int64))
    return frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)  # ids' order
