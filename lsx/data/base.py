"""The in-memory dataset every lsx loader returns, and its content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from lsx.errors import DataShapeError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images in [0, 1] with one or more label attributes and a fixed train/test split.

    Attributes
    ----------
    spec : str
        The name it was loaded by (``"mnist5k"``, ``"folder:/data/shirts"``, ...).
    x_train, x_test : ndarray of shape (n, channels, height, width), float32 in [0, 1]
    labels_train, labels_test : dict attribute -> ndarray of shape (n,), int64
        The first attribute is the primary one (``y_train``/``y_test``).
    label_names : dict attribute -> tuple of class names, index = label value
    notes : tuple of str
        What the loader did that a user should know (files skipped, modes converted, ...).
    """

    spec: str
    x_train: np.ndarray
    x_test: np.ndarray
    labels_train: dict[str, np.ndarray]
    labels_test: dict[str, np.ndarray]
    label_names: dict[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        for split in ("x_train", "x_test"):
            x = getattr(self, split)
            if x.ndim != 4 or x.dtype != np.float32:
                raise DataShapeError(
                    f"Dataset {self.spec!r}: {split} must be float32 of shape (n, C, H, W); got "
                    f"{x.dtype} of shape {x.shape}."
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataShapeError(
                f"Dataset {self.spec!r}: train images {self.x_train.shape[1:]} and test images "
                f"{self.x_test.shape[1:]} differ in shape."
            )
        if not self.label_names:
            raise DataShapeError(f"Dataset {self.spec!r} has no label attribute.")
        for attr in self.label_names:
            for split, x in (("train", self.x_train), ("test", self.x_test)):
                y = getattr(self, f"labels_{split}")[attr]
                if y.shape != (len(x),):
                    raise DataShapeError(
                        f"Dataset {self.spec!r}: {attr!r} labels of the {split} split have shape "
                        f"{y.shape}; expected ({len(x)},)."
                    )
        object.__setattr__(self, "content_hash", dataset_hash(self))

    @property
    def primary(self) -> str:
        """Name of the primary label attribute."""
        return next(iter(self.label_names))

    @property
    def y_train(self) -> np.ndarray:
        return self.labels_train[self.primary]

    @property
    def y_test(self) -> np.ndarray:
        return self.labels_test[self.primary]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.label_names[self.primary]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of the ``"train"`` or ``"test"`` split."""
        if name == "train":
            return self.x_train, self.y_train
        if name == "test":
            return self.x_test, self.y_test
        raise DataShapeError(f"Unknown split {name!r}; use 'train' or 'test'.")


def dataset_hash(ds: Dataset) -> str:
    """sha256 (first 16 hex digits) over images, labels and class names of both splits."""
    h = hashlib.sha256()
    for x in (ds.x_train, ds.x_test):
        h.update(str(x.shape).encode())
        h.update(np.ascontiguousarray(x).tobytes())
    for attr, names in ds.label_names.items():
        h.update(attr.encode())
        h.update("\x1f".join(names).encode())
        h.update(np.ascontiguousarray(ds.labels_train[attr], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(ds.labels_test[attr], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
