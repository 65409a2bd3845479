"""Image sources read on demand: datasets too large to hold in memory.

An :class:`ImageSource` knows its size, shape, labels and a content hash without decoding any
image, and decodes rows only when :meth:`ImageSource.read` asks for them. Training
(:mod:`lsx.train`, DataLoader workers) and streamed encoding (:mod:`lsx.latents`) read
through it, so memory stays bounded by the batch size, never by the dataset size.

``open_source(spec)`` accepts every ``lsx.data.load_dataset`` spec (an in-memory dataset wrapped
as a source) plus the lazy ones listed in :data:`LAZY_PREFIXES`.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lsx.data.base import Dataset
from lsx.data.registry import FOLDER_PREFIX, NPY_PREFIX
from lsx.errors import ConfigError, DatasetError, DataShapeError


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


# ------------------------------------------------------------------------------ open_source

LAZY_PREFIXES = (NPY_PREFIX, FOLDER_PREFIX)
NPY_TEST_FRACTION = 0.1  # share of a .npy source in the fixed test split ...
NPY_TEST_MAX = 10_000  # ... capped at this many rows
SPLIT_SEED = 0
CHANNEL_SAMPLE = 256  # lazy folders decode at most this many images to choose 1 or 3 channels
REMAP_BYTES = 64 * 2**20  # npy: the memory map is reopened after this many bytes were read
RANGE_CHECK_ROWS = 1024  # float32 .npy: rows checked for [0, 1] when opened (every read checks too)


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


SPLITS = ("all", "train", "test")


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


# ------------------------------------------------------------------------------ npy:PATH


class NpySource(ImageSource):
    """Images in one ``.npy`` file, memory-mapped: only the rows read are paged in.

    The file holds uint8 (scaled by 1/255) or float32 in [0, 1] images of shape (n, H, W)
    (one channel) or (n, C, H, W) with C in {1, 3}. Labels come from ``<stem>.labels.npy``
    (integers, shape (n,)) when it exists, else every row is class ``"all"``. The test split is a
    fixed seeded 10 % of the rows, at most 10,000. Nothing is unpickled (``allow_pickle=False``).
    The memory map is opened lazily and dropped when pickled, so a DataLoader worker reopens it.
    """

    def __init__(self, path: Path, *, image_size: int | None = None) -> None:
        self.path = Path(path)
        self.image_size = image_size
        self.spec = f"{NPY_PREFIX}{self.path}"
        self._x: np.ndarray | None = None
        x = self._images()
        self._raw_shape = tuple(int(s) for s in x.shape)
        n = self._raw_shape[0]
        c, h, w = (1, *self._raw_shape[1:]) if x.ndim == 3 else self._raw_shape[1:]
        side = (h, w) if image_size is None else (image_size, image_size)
        self.input_shape = (int(c), int(side[0]), int(side[1]))
        notes = []
        if image_size is not None and (h, w) != side:
            notes.append(f"resized from {h}x{w} to {image_size}x{image_size} on read (bilinear)")
        if x.dtype == np.float32:
            self._check_range(np.asarray(x[:RANGE_CHECK_ROWS]), 0)
            self._check_range(np.asarray(x[max(n - RANGE_CHECK_ROWS, 0) :]), n - RANGE_CHECK_ROWS)
        self.labels, self.label_names, stamp, label_note = self._read_labels(n)
        notes.append(label_note)
        self._test = _fixed_test_split(n)
        stat = self.path.stat()
        self.content_hash = _sha(
            str(self.path), stat.st_size, stat.st_mtime_ns, self._raw_shape, str(x.dtype), stamp
        )
        self.notes = tuple(notes)

    @property
    def labels_path(self) -> Path:
        name = self.path.name
        stem = name[: -len(".npy")] if name.endswith(".npy") else name
        return self.path.with_name(stem + ".labels.npy")

    def _images(self) -> np.ndarray:
        """The memory map, opened on first use (again in each DataLoader worker)."""
        if self._x is not None:
            return self._x
        path = self.path
        if not path.is_file():
            raise DatasetError(
                f"{path} does not exist or is not a file. Pass npy:PATH with the path of a .npy "
                "file of images, shape (n, H, W) or (n, C, H, W)."
            )
        with open(path, "rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY":  # np.load would call anything else a pickle
            what = "an .npz archive" if magic[:2] == b"PK" else "not a .npy file"
            raise DatasetError(
                f"{path} is {what}; npy: reads a single array saved with numpy.save (or "
                "np.lib.format.open_memmap for data larger than memory)."
            )
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:  # object arrays need pickle: refused
            raise DatasetError(
                f"{path} cannot be read without unpickling ({err}); lsx never unpickles data "
                "files. Save the images as a plain uint8 or float32 array with np.save."
            ) from err
        except (OSError, EOFError) as err:
            raise DatasetError(
                f"{path} is not a readable .npy file ({err}). Write it with numpy.save (or "
                "np.lib.format.open_memmap for data larger than memory)."
            ) from err
        _check_images_array(x, path)
        self._x = x
        return x

    def _read_labels(self, n: int) -> tuple[dict, dict, tuple, str]:
        path = self.labels_path
        if not path.is_file():
            labels = {"class": np.zeros(n, dtype=np.int64)}
            return labels, {"class": ("all",)}, (), f"no {path.name}: one class 'all'"
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise DatasetError(
                f"{path} is not a readable .npy of integer labels ({err}). Save the labels with "
                "np.save as an int array of shape (n,), or remove the file."
            ) from err
        if (
            not isinstance(raw, np.ndarray)
            or raw.shape != (n,)
            or not np.issubdtype(raw.dtype, np.integer)
        ):
            got = f"{raw.dtype} of shape {raw.shape}" if isinstance(raw, np.ndarray) else "npz"
            raise DatasetError(
                f"{path} must hold integer labels of shape ({n},), one per image; got {got}. "
                "Fix it or remove it (then every image is class 'all')."
            )
        values, codes = np.unique(raw, return_inverse=True)
        stat = path.stat()
        names = tuple(str(v) for v in values.tolist())
        note = f"labels from {path.name}: {len(names)} classes"
        return (
            {"class": codes.astype(np.int64)},
            {"class": names},
            (
                stat.st_size,
                stat.st_mtime_ns,
            ),
            note,
        )

    def _check_range(self, x: np.ndarray, first_row: int) -> None:
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            bad = ~(np.isfinite(x) & (x >= 0) & (x <= 1))
            row = max(first_row, 0) + int(np.argmax(bad.reshape(len(x), -1).any(1)))
            lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
            raise DataShapeError(
                f"{self.path}: float32 images must lie in [0, 1] with no NaN/Inf; row {row} does "
                f"not (values seen {lo:g}..{hi:g}). Rescale the data (e.g. x / 255) or save "
                "uint8 pixels, then open it again."
            )

    def split_indices(self, split: str) -> np.ndarray:
        return _split_of(len(self), self._test, split)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        x = self._images()
        if len(idx) and np.all(np.diff(idx) == 1):  # a contiguous run: one sequential read
            raw = np.asarray(x[int(idx[0]) : int(idx[-1]) + 1])
        else:
            raw = x[idx]
        if raw.ndim == 3:
            raw = raw[:, None]
        if raw.dtype == np.uint8:
            out = raw.astype(np.float32) / np.float32(255.0)
        else:
            out = np.array(raw, dtype=np.float32)
            self._check_range(out, int(idx[0]) if len(idx) else 0)
        del raw
        # Pages read through a map count in this process's resident set until it is unmapped:
        # drop the map every REMAP_BYTES so streaming a file larger than RAM keeps RSS flat.
        self._bytes_read = getattr(self, "_bytes_read", 0) + out.size * x.dtype.itemsize
        if self._bytes_read >= REMAP_BYTES:
            self._x, self._bytes_read = None, 0
        return _resized(out, self.image_size)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "npy", "dtype": str(self._images().dtype)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_x"] = None  # no open memory map in a pickle: workers reopen the file
        return state


def _check_images_array(x: np.ndarray, path: Path) -> None:
    """dtype uint8/float32 and shape (n, H, W) or (n, C, H, W), C in {1, 3}; else explain."""
    if x.dtype not in (np.uint8, np.float32):
        raise DataShapeError(
            f"{path} holds {x.dtype} images; npy: reads uint8 (0..255) or float32 in [0, 1]. "
            "Convert it, e.g. np.save(path, (x * 255).round().astype(np.uint8)) or "
            "x.astype(np.float32)."
        )
    channels_last = x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3)
    ok = (x.ndim == 3 or (x.ndim == 4 and x.shape[1] in (1, 3))) and min(x.shape[-2:]) >= 1
    if not ok:
        hint = (
            " It looks channels-last (n, H, W, C): save x.transpose(0, 3, 1, 2) instead."
            if channels_last
            else ""
        )
        raise DataShapeError(
            f"{path} holds an array of shape {x.shape}; npy: reads images of shape (n, H, W) "
            f"or (n, C, H, W) with C = 1 or 3.{hint}"
        )
    if x.shape[0] < 2:
        raise DataShapeError(
            f"{path} holds {x.shape[0]} image(s); a source needs at least 2 (a train and a test "
            "row)."
        )


# ------------------------------------------------------------------------------ folder:PATH

DEFAULT_FOLDER_SIZE = 32


class FolderSource(ImageSource):
    """A folder with one subfolder of images per class, decoded only when rows are read.

    Listing follows :mod:`lsx.data.folder` (sorted class subfolders, hidden entries ignored, one
    level deep; files that are not .png/.jpg/.jpeg/.webp are skipped and noted) with no cap on the
    number of files, and the same stratified 80/20 split. Each read decodes the files with
    :func:`lsx.data.images.decode_image` (size caps, format allowlist), normalises the mode and
    resizes to ``image_size`` exactly as the eager loader does, so the pixels are identical.

    Channels are chosen without decoding every file: up to ``CHANNEL_SAMPLE`` files, evenly
    spread over the rows, are decoded when the source is opened; 3 channels if any of them has
    colour (the eager loader's rule, applied to the sample), else 1, and an image that turns
    out to have colour is then converted to grey (ITU-R 601 luma). A file that cannot be decoded
    when read raises a DatasetError naming it (the eager loader skips such files up front;
    a lazy source cannot know them without decoding everything).
    The content hash covers every file's name, size and modification time (a stat per file).
    """

    def __init__(self, root: Path, *, image_size: int = DEFAULT_FOLDER_SIZE) -> None:
        from lsx.data import folder

        self.root = Path(root)
        self.image_size = int(image_size)
        self.spec = f"{FOLDER_PREFIX}{self.root}"
        class_dirs, notes = folder._class_dirs(self.root)
        listed = folder._list_files(self.root, class_dirs, sys.maxsize, notes)
        files: list[str] = []
        labels: list[int] = []
        names: list[str] = []
        other, empty = 0, []
        h = hashlib.sha256(f"{self.root}\x1f{self.image_size}".encode())
        for class_name, paths in listed.items():
            images = [p for p in paths if p.suffix.lower() in folder.IMAGE_EXTENSIONS]
            other += len(paths) - len(images)
            if not images:
                empty.append(class_name)
                continue
            names.append(class_name)
            for p in images:
                rel = f"{class_name}/{p.name}"
                try:
                    st = p.stat()
                except OSError as err:
                    raise DatasetError(
                        f"Cannot read {p} ({err.strerror or err}); check its permissions."
                    ) from err
                h.update(f"{rel}\x1f{st.st_size}\x1f{st.st_mtime_ns}\x1e".encode())
                files.append(rel)
                labels.append(len(names) - 1)
        del listed  # the Path objects: only the relative names are kept
        if other:
            notes.append(
                f"{folder._count(other, 'file')} skipped: not a .png, .jpg, .jpeg or .webp file"
            )
        if empty:
            notes.append(f"classes with no image file skipped: {', '.join(empty)}")
        if len(names) < 2:
            raise DatasetError(
                f"{self.root} has {len(names)} class subfolder(s) with image files; a dataset "
                "needs at least 2 classes. Put PNG, JPEG or WebP images in each class subfolder."
            )
        self.files = files
        y = np.asarray(labels, dtype=np.int64)
        self.labels = {"class": y}
        self.label_names = {"class": tuple(names)}
        self.channels = self._choose_channels(notes)
        self.input_shape = (self.channels, self.image_size, self.image_size)
        _, test = folder._split(y, names, notes)
        self._test = np.sort(test).astype(np.int64)
        self.content_hash = h.hexdigest()[:16]
        self.notes = tuple(notes)

    def _choose_channels(self, notes: list[str]) -> int:
        from lsx.data import folder

        rows = np.unique(np.linspace(0, len(self.files) - 1, CHANNEL_SAMPLE).round().astype(int))
        colour = decoded = 0
        for i in rows:
            try:
                pixels = self._pixels(int(i))
            except DatasetError:
                continue  # reported when the row is read
            decoded += 1
            colour += pixels.ndim == 3 and folder._has_colour(pixels)
        what = f"{colour} of {decoded} sampled images have colour"
        if colour:
            notes.append(f"3 channels (RGB): {what}; grey ones copied")
            return 3
        notes.append(f"1 channel (grey): {what}; any colour image is read as grey")
        return 1

    def _pixels(self, i: int) -> np.ndarray:
        """uint8 (s, s) or (s, s, 3) of row ``i``, decoded like lsx.data.folder does."""
        from lsx.data.images import MAX_BYTES, decode_image, normalize_mode, to_uint8

        name = self.files[i]
        path = self.root / name
        try:
            if path.stat().st_size > MAX_BYTES:
                raise DatasetError(f"{name} is larger than {MAX_BYTES / 1e6:.0f} MB")
            img = decode_image(path.read_bytes(), name=name, draft_size=(self.image_size,) * 2)
        except DatasetError as err:
            raise DatasetError(
                f"{self.root}: row {i} cannot be used: {err} Remove or replace that file and run "
                "again (the folder's content hash changes, so stores made from it restart)."
            ) from err
        except OSError as err:
            raise DatasetError(
                f"{self.root}: {name} could not be read ({err.strerror or err}); check that it "
                "still exists and is readable."
            ) from err
        flat, _ = normalize_mode(img)
        return to_uint8(flat, size=(self.image_size, self.image_size))

    def split_indices(self, split: str) -> np.ndarray:
        return _split_of(len(self), self._test, split)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        from lsx.data.folder import _as_channels

        out = np.empty((len(idx), *self.input_shape), dtype=np.float32)
        for k, i in enumerate(idx):
            pixels = _as_channels(self._pixels(int(i)), self.channels)
            out[k] = pixels.astype(np.float32) / np.float32(255.0)  # as lsx.data.folder._build
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "folder", "image_size": self.image_size}


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
