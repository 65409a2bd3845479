"""``folder:PATH``: a folder with one subfolder of images per class, decoded on demand."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lsx.data.registry import FOLDER_PREFIX
from lsx.data.sources import ImageSource, _split_of
from lsx.errors import DatasetError

CHANNEL_SAMPLE = 256  # lazy folders decode at most this many images to choose 1 or 3 channels
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
        from lsx.data.images import decode_image, normalize_mode, read_image_file, to_uint8

        name = self.files[i]
        try:  # regular files inside the folder only, read non-blocking with a byte cap
            data = read_image_file(self.root / name, root=self.root, name=name)
            img = decode_image(data, name=name, draft_size=(self.image_size,) * 2)
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
