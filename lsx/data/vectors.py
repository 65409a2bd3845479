"""Reading vectors and labels made elsewhere, for embedding sets (:mod:`lsx.embeddings`).

A ``.npy`` is memory-mapped and never unpickled; a Parquet file is read with pyarrow; every file
is size-capped before it is read. Vectors must be finite, 2-D and of one dimension per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lsx.errors import ConfigError, DatasetError, DataShapeError

MAX_INPUT_BYTES = 8 * 2**30  # a vectors or labels file larger than this is refused unread
MAX_DIM = 65_536


def check_size(path: Path, what: str) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DatasetError(f"The {what} file {path} cannot be read ({err.strerror}).") from err
    if not path.is_file():
        raise DatasetError(f"The {what} path {path} is not a regular file.")
    if size > MAX_INPUT_BYTES:
        raise DatasetError(
            f"The {what} file {path} is {size / 2**30:.1f} GiB; lsx imports files up to "
            f"{MAX_INPUT_BYTES / 2**30:.0f} GiB. Split it, or reduce the vectors' dimension."
        )


def load_npy(path: Path, what: str) -> np.ndarray:
    check_size(path, what)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:  # object arrays need pickle: refused
        raise DatasetError(
            f"The {what} file {path} holds Python objects (pickled data), which lsx never "
            "loads. Save numbers (or fixed-width strings) with numpy.save."
        ) from err
    except (OSError, EOFError) as err:
        raise DatasetError(f"The {what} file {path} is not a readable .npy file ({err}).") from err


def read_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_size(path, "Parquet")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path} is not a readable Parquet file ({err}).") from err


def vector_column(table: Any, column: str | None, path: Path) -> str:
    import pyarrow as pa

    lists = [
        f.name
        for f in table.schema
        if pa.types.is_list(f.type)
        or pa.types.is_large_list(f.type)
        or pa.types.is_fixed_size_list(f.type)
    ]
    if column is not None:
        if column not in table.column_names:
            raise ConfigError(
                f"{path} has no column {column!r}; its columns: {', '.join(table.column_names)}."
            )
        return column
    if len(lists) == 1:
        return lists[0]
    raise ConfigError(
        f"{path} has {len(lists)} list columns ({', '.join(lists) or 'none'}); name the one "
        "holding the vectors with --vector-column."
    )


def vectors_from_column(table: Any, column: str, path: Path) -> np.ndarray:
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if not (
        pa.types.is_list(col.type)
        or pa.types.is_large_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
    ):
        raise DataShapeError(
            f"Column {column!r} of {path} is {col.type}, not a list of numbers per row."
        )
    if col.null_count:
        raise DataShapeError(f"Column {column!r} of {path} has {col.null_count} empty rows.")
    lengths = np.asarray(col.value_lengths()) if not pa.types.is_fixed_size_list(col.type) else None
    if lengths is not None and len(lengths) and (lengths != lengths[0]).any():
        bad = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataShapeError(
            f"Column {column!r} of {path} holds vectors of different lengths (row 0 has "
            f"{int(lengths[0])} numbers, row {bad} has {int(lengths[bad])}); every row needs "
            "the same dimension."
        )
    values = col.flatten()
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise DataShapeError(f"Column {column!r} of {path} holds {values.type}, not numbers.")
    flat = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)


def check_vectors(z: np.ndarray, where: str) -> np.ndarray:
    if z.ndim != 2:
        raise DataShapeError(
            f"The vectors in {where} have shape {z.shape}; lsx needs a 2-D array (rows, dims)."
        )
    n, d = z.shape
    if n < 2 or d < 1:
        raise DataShapeError(f"{where} holds {n} vectors of dimension {d}; import at least 2.")
    if d > MAX_DIM:
        raise DataShapeError(f"{where} has vectors of dimension {d}; lsx imports up to {MAX_DIM}.")
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise DataShapeError(f"{where} holds {z.dtype} values, not numbers.")
    out = np.asarray(z, dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataShapeError(
            f"{where} has {len(bad):,} vectors with NaN or infinite values (first at row "
            f"{int(bad[0])}); drop or fix those rows before importing."
        )
    return out


def label_codes(values: np.ndarray, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class codes 0..k-1 and names of a label array (numbers sorted numerically)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataShapeError(f"The {what} must be one value per row; got shape {values.shape}.")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DataShapeError(f"The {what} hold NaN or infinite values.")
    if values.dtype.kind == "f" and (values == np.round(values)).all():
        values = values.astype(np.int64)
    uniq, codes = np.unique(
        values.astype(str) if values.dtype.kind == "O" else values, return_inverse=True
    )
    return codes.astype(np.int64), tuple(str(u) for u in uniq)


def read_labels_file(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.asarray(load_npy(path, "labels"))
    if path.suffix in (".txt", ".csv"):
        check_size(path, "labels")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if path.suffix == ".csv" and lines and not lines[0].strip().lstrip("-").isdigit():
            lines = lines[1:]  # a header row
        return np.asarray([line.strip() for line in lines if line.strip() != ""], dtype=str)
    raise ConfigError(f"Labels are read from .npy, .txt or .csv files; got {path.name}.")
