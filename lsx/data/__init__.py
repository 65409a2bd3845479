"""Datasets: the one registry ``DATASETS``, :func:`load_dataset` and :func:`open_data`.

``load_dataset("mnist5k")`` loads a built-in dataset; ``load_dataset("folder:/path/to/images")``
loads a folder with one subfolder of PNG/JPEG/WebP images per class. Loads are cached per process
and the arrays are read-only, so the same frozen :class:`Dataset` can be shared safely.
:func:`open_data` is the one entry point that the CLI, the trainer, the encoder and the app use:
it loads built-in data and opens ``npy:`` files and large folders as lazy sources
(:mod:`lsx.data.lazy`). Nothing here touches the network; importing this package imports neither
sklearn nor skimage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsx.data.base import Dataset
from lsx.data.registry import (
    DATASETS,
    DEFAULT_FOLDER_IMAGE_SIZE,
    FOLDER_PREFIX,
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    NPY_PREFIX,
    DatasetSpec,
    clear_dataset_cache,
    load_dataset,
    spec_for,
)
from lsx.data.registry import _folder_stamp as _folder_stamp
from lsx.errors import DatasetError

if TYPE_CHECKING:
    from lsx.data.lazy import ImageSource

__all__ = [
    "DATASETS",
    "DEFAULT_FOLDER_IMAGE_SIZE",
    "FOLDER_PREFIX",
    "MAX_IMAGE_SIZE",
    "MIN_IMAGE_SIZE",
    "NPY_PREFIX",
    "LAZY_FOLDER_ABOVE",
    "Dataset",
    "DatasetSpec",
    "clear_dataset_cache",
    "is_lazy",
    "load_dataset",
    "open_data",
    "spec_for",
]

LAZY_FOLDER_ABOVE = 20_000  # a folder with more images than this is read lazily without --lazy


def open_data(
    spec: str, image_size: int | None = None, *, lazy: bool | None = None
) -> Dataset | ImageSource:
    """The data a spec names: a :class:`Dataset` in memory or a lazy ``ImageSource``.

    Parameters
    ----------
    spec : str
        A built-in name (always loaded), ``npy:PATH`` (always a lazy source: memory-mapped) or
        ``folder:PATH``.
    image_size : int or None
        Resize to this square size (None: the data's own size; folders default to 32).
    lazy : bool or None
        For ``folder:`` only: True opens a lazy source (lists files, decodes nothing), False
        loads every image, None (default) is lazy above ``LAZY_FOLDER_ABOVE`` images.

    Raises
    ------
    ConfigError, DatasetError, DataShapeError
        An unknown name, an unreadable path (a DatasetError that says to check it exists and
        that the process may read it), a pickled or object array, an unsupported dtype or shape.
    """
    if not spec.startswith((FOLDER_PREFIX, NPY_PREFIX)):
        return load_dataset(spec, image_size=image_size)
    from lsx.data.lazy import open_source  # lazy: reading sources needs more than the registry

    if spec.startswith(FOLDER_PREFIX) and lazy is False:
        return load_dataset(spec, image_size=image_size)
    try:
        source = open_source(spec, image_size=image_size)
    except OSError as err:  # e.g. a file this process may not read
        raise DatasetError(
            f"{spec.split(':', 1)[1]} cannot be read ({err.strerror or err}); check that it "
            "exists and that the server may read it."
        ) from err
    if spec.startswith(FOLDER_PREFIX) and lazy is None and len(source) <= LAZY_FOLDER_ABOVE:
        return load_dataset(spec, image_size=image_size)
    return source


def is_lazy(data: Dataset | ImageSource) -> bool:
    """Whether ``data`` is read batch by batch (a lazy source) rather than held in memory."""
    return not isinstance(data, Dataset)
