"""``npy:PATH``: images in one ``.npy`` file, memory-mapped and read on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lsx.data.registry import NPY_PREFIX
from lsx.data.sources import ImageSource, _fixed_test_split, _resized, _sha, _split_of
from lsx.errors import DatasetError, DataShapeError

REMAP_BYTES = 64 * 2**20  # npy: the memory map is reopened after this many bytes were read
RANGE_CHECK_ROWS = 1024  # float32 .npy: rows checked for [0, 1] when opened (every read checks too)


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
