"""Embedding sets: latents made elsewhere (no model), explored like a run's latent store.

An embedding set is a folder beside the runs (in the checkpoints folder)::

    <name>/embeddings.json          what was imported: files, hashes, columns, images, dates
    <name>/stores/embeddings/       a complete latent store (lsx.latents): z.npy, labels-*.npy,
                                    rows.npy, recon_error.npy (NaN: there is no decoder)
    <name>/metadata.parquet         the other columns of the input, one row per vector (optional)
    <name>/tags.json                tags, as for a run (lsx.tags)

so the Latent map's store view, nearest-neighbour search, tags, exports and Compare's numbers
work on it without a model. Features that need an encoder (looking up a new image) or a decoder
(reconstructions, decoding the map) say so instead.

Input: a ``.npy`` of shape (n, d) (never unpickled) or a Parquet file with a vector column (a list
or fixed-size-list of numbers per row). Labels: a column of the Parquet file, or a ``.npy``
(integers or strings), ``.txt`` or ``.csv`` file with one label per row. Every other Parquet
column is kept as metadata; one with at most :data:`MAX_CATEGORIES` distinct values is also a
colour on the map. Images (optional): a built-in dataset name, ``npy:PATH`` or ``folder:PATH``
with one image per vector, inside the app's data folders (``LSX_DATA_ROOTS``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lsx.checkpoint import EMBEDDING_SET_FILE
from lsx.data.vectors import (
    check_vectors,
    label_codes,
    load_npy,
    read_labels_file,
    read_parquet,
    vectors_from_column,
)
from lsx.data.vectors import vector_column as find_vector_column
from lsx.errors import ConfigError, DatasetError, DataShapeError, LsxError
from lsx.files import atomic_write_json, read_json_capped
from lsx.latents.store import FORMAT_VERSION, LatentStore, open_store
from lsx.paths import DATA_ROOTS_ENV, app_data_path

STORE_NAME = "embeddings"
METADATA_NAME = "metadata.parquet"
MAX_MANIFEST_BYTES = 1_000_000
MAX_CATEGORIES = 1_000  # a metadata column with more distinct values is not a map colour
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MODEL_KIND = "embeddings"  # the store manifest's model_kind of an embedding set
UNLABELLED = "unlabelled"


@dataclass(frozen=True, eq=False)
class EmbeddingSet:
    """An opened embedding set; ``store``'s arrays are read-only memory maps."""

    path: Path
    manifest: dict[str, Any]
    store: LatentStore

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def z(self) -> np.ndarray:
        return self.store.z

    @property
    def n(self) -> int:
        return self.store.n

    @property
    def dim(self) -> int:
        return self.store.dim

    @property
    def labels(self) -> dict[str, np.ndarray]:
        return self.store.labels

    @property
    def label_names(self) -> dict[str, tuple[str, ...]]:
        return self.store.label_names

    @property
    def images(self) -> str | None:
        """The image spec of the rows, or None when the set has no images."""
        return self.manifest.get("images")

    def metadata(self) -> Any:
        """The kept metadata columns as a pandas DataFrame (empty when there are none)."""
        import pandas as pd

        path = self.path / METADATA_NAME
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame(index=range(self.n))


def is_embedding_set(folder: Path | str) -> bool:
    return (Path(folder) / EMBEDDING_SET_FILE).is_file()


def store_path(folder: Path | str) -> Path:
    return Path(folder) / "stores" / STORE_NAME


# ------------------------------------------------------------------------------ reading input


def _safe_attr(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_")[:40] or "column"


def _check_images(spec: str | None, n: int, check_roots: bool) -> Any:
    """Open the image spec (inside the data roots) and check it has one image per vector."""
    if spec is None:
        return None
    from lsx.data.lazy import open_source

    kind, sep, rest = spec.partition(":")
    if sep and check_roots:
        app_data_path(rest)  # ConfigError naming the roots; does not tell whether it exists
    source = open_source(spec)
    if len(source) != n:
        raise DataShapeError(
            f"The images {spec!r} hold {len(source):,} rows but there are {n:,} vectors; "
            "give one image per vector, in the same order."
        )
    return source


# ------------------------------------------------------------------------------ importing


def import_embeddings(
    root: Path | str,
    name: str,
    latents: Path | str | np.ndarray,
    *,
    labels: Path | str | np.ndarray | None = None,
    label_column: str | None = None,
    vector_column: str | None = None,
    images: str | None = None,
    overwrite: bool = False,
    check_roots: bool = True,
) -> Path:
    """Import vectors as an embedding set ``<root>/<name>`` and return its folder.

    Parameters
    ----------
    root : Path
        The checkpoints folder (the app lists embedding sets beside the runs).
    name : str
        Folder name: letters, digits, ``.``, ``_`` and ``-``.
    latents : path or ndarray
        ``.npy`` (n, d), a Parquet file with a vector column, or an array.
    labels : path, ndarray or None
        One label per row (``.npy``, ``.txt``, ``.csv``); or use ``label_column`` of a Parquet file.
    label_column, vector_column : str or None
        Columns of the Parquet file (the vector column is found when it is the only list column).
    images : str or None
        A built-in dataset name, ``npy:PATH`` or ``folder:PATH`` with one image per vector.
    overwrite : bool
        Replace an existing embedding set of that name (never a run).
    check_roots : bool
        Refuse image paths outside the app's data folders (``LSX_DATA_ROOTS``), which the app
        would not read.

    Raises
    ------
    ConfigError, DatasetError, DataShapeError
        What was wrong with the input, and what to do.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            f"An embedding set's name must be 1-100 letters, digits, '.', '_' or '-' (starting "
            f"with a letter or digit); got {name!r}."
        )
    root = Path(root)
    target = root / name
    if target.exists() and not (overwrite and is_embedding_set(target)):
        what = "an embedding set" if is_embedding_set(target) else "a run or another folder"
        hint = " Pass --overwrite to replace it." if is_embedding_set(target) else ""
        raise ConfigError(f"{target} exists ({what}); choose another --name.{hint}")
    table, source_files = None, {}
    if isinstance(latents, np.ndarray):
        z = check_vectors(latents, "the latents array")
    else:
        path = Path(latents)
        source_files["latents"] = str(path)
        if path.suffix == ".parquet":
            table = read_parquet(path)
            column = find_vector_column(table, vector_column, path)
            z = check_vectors(vectors_from_column(table, column, path), str(path))
            table = table.drop_columns([column])
        elif path.suffix == ".npy":
            z = check_vectors(load_npy(path, "latents"), str(path))
        else:
            raise ConfigError(f"Latents are read from .npy or .parquet files; got {path.name}.")
    n = len(z)
    attrs: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    if label_column is not None:
        if table is None or label_column not in table.column_names:
            raise ConfigError(
                f"--label-column {label_column!r} needs a Parquet file with that column."
            )
        attrs["label"] = label_codes(
            table.column(label_column).to_numpy(zero_copy_only=False), "labels"
        )
        table = table.drop_columns([label_column])
    elif labels is not None:
        raw = labels if isinstance(labels, np.ndarray) else read_labels_file(Path(labels))
        if not isinstance(labels, np.ndarray):
            source_files["labels"] = str(labels)
        if len(raw) != n:
            raise DataShapeError(
                f"The labels have {len(raw):,} rows but there are {n:,} vectors; give one label "
                "per vector, in the same order."
            )
        attrs["label"] = label_codes(raw, "labels")
    metadata = None
    if table is not None and table.num_columns:
        metadata = table.to_pandas()
        for col in metadata.columns:
            values = metadata[col].to_numpy()
            distinct = metadata[col].nunique(dropna=False)
            # a colour groups rows: not an id or caption column (about one value per row)
            if values.ndim == 1 and distinct <= min(MAX_CATEGORIES, max(2, n // 2)):
                key = _safe_attr(col)
                if key not in attrs and key != "label":
                    attrs[key] = label_codes(np.asarray(metadata[col].astype(str)), str(col))
    source = _check_images(images, n, check_roots)
    described = None if source is None else source.describe()
    if not attrs and source is not None and len(source.label_names[source.primary]) > 1:
        for attr, names in source.label_names.items():  # the images' own labels (folders' names)
            attrs[_safe_attr(attr)] = (np.asarray(source.labels[attr], dtype=np.int64), names)
    if not attrs:
        attrs["label"] = (np.zeros(n, dtype=np.int64), (UNLABELLED,))
    sha = hashlib.sha256(np.ascontiguousarray(z).tobytes()).hexdigest()
    manifest = {
        "format": 1,
        "kind": MODEL_KIND,
        "name": name,
        "n": n,
        "dim": int(z.shape[1]),
        "latents_sha256": sha,
        "files": source_files,
        "label_attributes": {a: len(names) for a, (_, names) in attrs.items()},
        "metadata_columns": [] if metadata is None else [str(c) for c in metadata.columns],
        "images": images,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.importing-", dir=root))
    try:
        _write_store(store_path(tmp), z, attrs, sha, described, images)
        if metadata is not None:
            metadata.to_parquet(tmp / METADATA_NAME, index=False)
        atomic_write_json(tmp / EMBEDDING_SET_FILE, manifest)
        if target.exists():  # overwrite: the old set goes only once the new one is whole
            old = root / f".{name}.replaced-{os.getpid()}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_store(
    folder: Path,
    z: np.ndarray,
    attrs: dict[str, tuple[np.ndarray, tuple[str, ...]]],
    sha: str,
    described: dict[str, Any] | None,
    images: str | None,
) -> None:
    """A complete latent store of the vectors (same format as ``python -m lsx encode``)."""
    folder.mkdir(parents=True)
    n, dim = z.shape
    np.save(folder / "z.npy", z)
    np.save(folder / "recon_error.npy", np.full(n, np.nan, dtype=np.float32))
    np.save(folder / "rows.npy", np.arange(n, dtype=np.int64))
    for attr, (codes, _) in attrs.items():
        np.save(folder / f"labels-{attr}.npy", codes)
    source = {
        "spec": images or "none",
        "hash": (described or {}).get("hash", sha[:16]),
        "n": n,
        "input_shape": (described or {}).get("input_shape"),
        "label_names": {a: list(names) for a, (_, names) in attrs.items()},
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {
        "format_version": FORMAT_VERSION,
        "checkpoint_sha": f"embeddings:{sha}",
        "model_kind": MODEL_KIND,
        "latent_shape": [dim],
        "source": source,
        "split": "all",
        "n": n,
        "dim": dim,
        "rows_done": n,
        "complete": True,
        "primary": next(iter(attrs)),  # the first label column given
        "imported": True,
        "created": now,
        "updated": now,
    }
    atomic_write_json(folder / "manifest.json", manifest)


# ------------------------------------------------------------------------------ opening


def load_embedding_set(folder: Path | str) -> EmbeddingSet:
    """Open an embedding set read-only.

    Raises
    ------
    DatasetError
        Not an embedding set, or its manifest or store is unreadable (the message says which).
    """
    folder = Path(folder)
    path = folder / EMBEDDING_SET_FILE
    if not path.is_file():
        raise DatasetError(
            f"{folder} is not an embedding set ({EMBEDDING_SET_FILE} is missing). Make one with "
            "`lsx import-embeddings --latents FILE --name NAME`."
        )
    manifest = read_json_capped(path, MAX_MANIFEST_BYTES, EMBEDDING_SET_FILE, DatasetError)
    if not isinstance(manifest, dict) or manifest.get("kind") != MODEL_KIND:
        raise DatasetError(f"{path} is not an embedding-set manifest; import the set again.")
    try:
        store = open_store(store_path(folder))
    except LsxError as err:
        raise DatasetError(
            f"The vectors of embedding set {folder.name} are unreadable: import it again with "
            f"`lsx import-embeddings ... --overwrite` ({err})"
        ) from err
    return EmbeddingSet(folder, manifest, store)


def list_embedding_sets(root: Path | str) -> tuple[list[EmbeddingSet], list[tuple[str, str]]]:
    """Embedding sets under ``root`` (by name) and ``(name, reason)`` for each unreadable one."""
    root = Path(root)
    sets: list[EmbeddingSet] = []
    skipped: list[tuple[str, str]] = []
    if not root.is_dir():
        return sets, skipped
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not is_embedding_set(entry):
            continue
        try:
            sets.append(load_embedding_set(entry))
        except Exception as err:  # one bad folder never breaks the listing
            skipped.append((entry.name, str(err).splitlines()[0][:300]))
    return sets, skipped


def images_for_app(spec: str | None) -> str:
    """Why the app cannot show an embedding set's images, or "" when it may read them."""
    if spec is None:
        return (
            "this embedding set has no images (import it with --images npy:PATH, folder:PATH or "
            "a built-in dataset name to see them)"
        )
    _, sep, rest = spec.partition(":")
    if sep:
        try:
            app_data_path(rest)
        except ConfigError:
            return (
                "its images lie outside the app's data folders (set "
                f"{DATA_ROOTS_ENV} to include them)"
            )
    return ""
