"""The base of lazy image sources: :class:`ImageSource`, an in-memory dataset seen as one
(:class:`DatasetSource`), and the split helpers the file-backed sources share. The sources
themselves: :mod:`lsx.data.npy_source`, :mod:`lsx.data.folder_source`; opened by
:func:`lsx.data.lazy.open_source`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from lsx.data.base import Dataset
from lsx.errors import ConfigError, DataShapeError

NPY_TEST_FRACTION = 0.1  # share of a .npy source in the fixed test split ...
NPY_TEST_MAX = 10_000  # ... capped at this many rows
SPLIT_SEED = 0
SPLITS = ("all", "train", "test")


class ImageSource:
    """Base class of lazy image sources (subclasses set the attributes and implement ``_read``).

    Attributes
    ----------
    spec : str
        The name it was opened by (``"npy:/data/big.npy"``, ``"folder:/data/shirts"``, ...).
    input_shape : tuple (C, H, W)
    labels : dict attribute -> ndarray of shape (n,), int64
        The first attribute is the primary one.
    label_names : dict attribute -> tuple of class names
    content_hash : str
        Identifies the content without decoding it (file names, sizes, mtimes; or the bytes of a
        small in-memory dataset). A different hash makes a latent store stale.
    notes : tuple of str
        What the opener did that a user should know.
    """

    spec: str
    input_shape: tuple[int, int, int]
    labels: dict[str, np.ndarray]
    label_names: dict[str, tuple[str, ...]]
    content_hash: str
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(len(next(iter(self.labels.values()))))

    @property
    def primary(self) -> str:
        return next(iter(self.label_names))

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the primary label's classes (as ``Dataset.class_names``)."""
        return tuple(self.label_names[self.primary])

    @property
    def y(self) -> np.ndarray:
        """Primary labels of all rows, shape (n,), int64."""
        return self.labels[self.primary]

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of ``"train"``, ``"test"`` or ``"all"``, sorted, int64."""
        raise NotImplementedError

    def read(self, indices: np.ndarray | slice) -> np.ndarray:
        """Decode rows: float32 of shape (len(indices), C, H, W) in [0, 1], in the given order."""
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise DataShapeError(f"indices must be 1-D; got shape {idx.shape}.")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise DataShapeError(
                f"indices must lie in [0, {len(self) - 1}] for {self.spec!r}; got "
                f"{int(idx.min())}..{int(idx.max())}."
            )
        out = self._read(idx)
        assert out.shape == (len(idx), *self.input_shape)
        assert out.dtype == np.float32
        return out

    def _read(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What a manifest records about the source."""
        return {
            "spec": self.spec,
            "hash": self.content_hash,
            "n": len(self),
            "input_shape": list(self.input_shape),
        }


def check_spec(spec: object) -> str:
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"A data spec must be a non-empty string; got {spec!r}.")
    return spec


def _sha(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:16]


def _resized(x: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or x.shape[-2:] == (size, size):
        return x
    from lsx.data.images import resize_batch

    return resize_batch(x, size)


# ------------------------------------------------------------------------------ in-memory datasets


class DatasetSource(ImageSource):
    """An in-memory :class:`~lsx.data.Dataset` seen as a source: rows are train, then test."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.spec = dataset.spec
        self.input_shape = dataset.input_shape
        self.n_train = len(dataset.x_train)
        self.labels = {
            a: np.concatenate([dataset.labels_train[a], dataset.labels_test[a]]).astype(np.int64)
            for a in dataset.label_names
        }
        self.label_names = dict(dataset.label_names)
        self.content_hash = dataset.content_hash
        self.notes = tuple(dataset.notes)

    def split_indices(self, split: str) -> np.ndarray:
        n = len(self)
        bounds = {"train": (0, self.n_train), "test": (self.n_train, n), "all": (0, n)}
        lo, hi = bounds[_check_split(split)]
        return np.arange(lo, hi, dtype=np.int64)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.input_shape), dtype=np.float32)
        train = idx < self.n_train
        out[train] = self.dataset.x_train[idx[train]]
        out[~train] = self.dataset.x_test[idx[~train] - self.n_train]
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "dataset"}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    return split


def _fixed_test_split(n: int) -> np.ndarray:
    """Sorted test rows of a source without its own split: seeded, 10 %, at most 10,000."""
    n_test = min(max(int(np.ceil(NPY_TEST_FRACTION * n)), 1), NPY_TEST_MAX, n - 1)
    rng = np.random.default_rng(SPLIT_SEED)
    return np.sort(rng.choice(n, size=n_test, replace=False)).astype(np.int64)


def _split_of(n: int, test: np.ndarray, split: str) -> np.ndarray:
    split = _check_split(split)
    if split == "all":
        return np.arange(n, dtype=np.int64)
    if split == "test":
        return test.copy()
    keep = np.ones(n, dtype=bool)
    keep[test] = False
    return np.flatnonzero(keep).astype(np.int64)
