"""Image sources read on demand: datasets too large to hold in memory.

An :class:`ImageSource` knows its size, shape, labels and a content hash without decoding any
image, and decodes rows only when :meth:`ImageSource.read` asks for them. Training
(:mod:`lsx.train`, DataLoader workers) and streamed encoding (:mod:`lsx.latents`) read
through it, so memory stays bounded by the batch size, never by the dataset size.

``open_source(spec)`` accepts every ``lsx.data.load_dataset`` spec (an in-memory dataset wrapped
as a source) plus the lazy ones listed in :data:`LAZY_PREFIXES`.

The sources live in :mod:`lsx.data.sources` (the base, in-memory datasets),
:mod:`lsx.data.npy_source` and :mod:`lsx.data.folder_source`; every name stays importable
from here.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np

from lsx.data.folder_source import CHANNEL_SAMPLE, DEFAULT_FOLDER_SIZE, FolderSource
from lsx.data.npy_source import RANGE_CHECK_ROWS, REMAP_BYTES, NpySource
from lsx.data.registry import FOLDER_PREFIX, NPY_PREFIX
from lsx.data.sources import (
    NPY_TEST_FRACTION,
    NPY_TEST_MAX,
    SPLIT_SEED,
    SPLITS,
    DatasetSource,
    ImageSource,
    check_spec,
)
from lsx.errors import ConfigError, DataShapeError

__all__ = [
    "CHANNEL_SAMPLE",
    "DEFAULT_FOLDER_SIZE",
    "LAZY_PREFIXES",
    "NPY_TEST_FRACTION",
    "NPY_TEST_MAX",
    "RANGE_CHECK_ROWS",
    "REMAP_BYTES",
    "SPLITS",
    "SPLIT_SEED",
    "DatasetSource",
    "FolderSource",
    "ImageSource",
    "NpySource",
    "check_spec",
    "open_source",
    "torch_dataset",
]

LAZY_PREFIXES = (NPY_PREFIX, FOLDER_PREFIX)


def open_source(spec: str, *, image_size: int | None = None) -> ImageSource:
    """Open a data spec as an :class:`ImageSource` without loading its images.

    Parameters
    ----------
    spec : str
        A ``lsx.data.load_dataset`` name (``"mnist5k"``, ``"textures"``, ...; loaded into memory
        and wrapped), ``"npy:PATH"`` (a memory-mapped ``.npy`` of images) or ``"folder:PATH"``
        (one subfolder of images per class, decoded on read).
    image_size : int or None
        Side length in pixels, 4..256. ``folder:`` defaults to 32; ``npy:`` and built-in
        datasets keep their native size unless given (then resized on read, bilinear).

    Returns
    -------
    ImageSource

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones) or invalid ``image_size``.
    DatasetError, DataShapeError
        The file or folder cannot be read, or holds images of an unsupported dtype or shape.
    """
    from lsx.data.registry import DATASETS, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, load_dataset

    spec = check_spec(spec)
    if image_size is not None and (
        not isinstance(image_size, int | np.integer)
        or isinstance(image_size, bool)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ConfigError(
            f"image_size must be an int in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}] or None; got "
            f"{image_size!r}."
        )
    size = None if image_size is None else int(image_size)
    for prefix in LAZY_PREFIXES:
        if spec.startswith(prefix):
            rest = spec[len(prefix) :].strip()
            if not rest:
                raise ConfigError(
                    f"{spec!r} names no path; write {prefix}PATH, e.g. {prefix}/data/images"
                    f"{'.npy' if prefix == NPY_PREFIX else ''}."
                )
            path = Path(rest).expanduser().resolve()
            if prefix == NPY_PREFIX:
                return NpySource(path, image_size=size)
            return FolderSource(path, image_size=size or DEFAULT_FOLDER_SIZE)
    if spec not in DATASETS:
        close = difflib.get_close_matches(spec, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown data spec {spec!r}{hint}; use one of {', '.join(sorted(DATASETS))}, "
            f"{NPY_PREFIX}PATH for a .npy file of images (n, H, W) or (n, C, H, W), or "
            f"{FOLDER_PREFIX}PATH for a folder with one subfolder of images per class."
        )
    return DatasetSource(load_dataset(spec, image_size=size))


# ------------------------------------------------------------------------------ torch


def torch_dataset(source: ImageSource, indices: np.ndarray | None = None) -> Any:
    """A ``torch.utils.data.Dataset`` of ``(x, y)`` over ``source`` rows ``indices``.

    ``x`` is a float32 tensor (C, H, W); ``y`` an int64 tensor: the primary label, or all
    attributes (n_attr,) when the source has several. Batched fetching (``__getitems__``) reads a
    whole batch with one :meth:`ImageSource.read`. Picklable for DataLoader workers with any start
    method: a memory map is reopened in each worker, no file handle is captured.
    """
    from torch.utils.data import Dataset as TorchDataset

    class _Rows(TorchDataset):
        def __init__(self, src: ImageSource, rows: np.ndarray) -> None:
            self.source = src
            self.rows = rows
            self.ys = np.stack([src.labels[a] for a in src.label_names], axis=1)  # (n, n_attr)

        def __len__(self) -> int:
            return len(self.rows)

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            return self.__getitems__([i])[0]

        def __getitems__(self, items: list[int]) -> list[tuple[Any, Any]]:
            import torch

            rows = self.rows[np.asarray(items, dtype=np.int64)]
            x = torch.from_numpy(self.source.read(rows))
            y = torch.from_numpy(self.ys[rows])
            y = y[:, 0] if y.shape[1] == 1 else y
            return list(zip(x.unbind(0), y.unbind(0), strict=True))

    rows = np.arange(len(source), dtype=np.int64) if indices is None else np.asarray(indices)
    rows = rows.astype(np.int64)
    if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= len(source))):
        raise DataShapeError(
            f"indices must be a 1-D array of rows in [0, {len(source) - 1}] of {source.spec!r}."
        )
    return _Rows(source, rows)
