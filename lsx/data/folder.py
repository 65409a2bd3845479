"""The ``folder:PATH`` loader: one subfolder of PNG/JPEG/WebP images per class.

Rules (each reported in ``Dataset.notes`` when it applies):

- Class names are the subfolder names, sorted; hidden subfolders and files (``.DS_Store``,
  ``._x.png``) are ignored; nothing deeper than one level is read.
- Every image is decoded with :func:`lsx.data.images.decode_image` (size caps, format allowlist),
  its mode normalised (transparency composited on white, 16-bit rescaled, CMYK -> RGB) and
  stretched to ``image_size`` x ``image_size`` (the aspect ratio is not kept).
- 3 channels if any image has colour (some pixel whose R, G, B differ by more than
  ``COLOUR_TOLERANCE`` levels), else 1; grey images are then copied to 3 channels.
- Unreadable files are skipped; a class with no readable image is skipped.
- A fixed stratified 80/20 split; a class with a single image goes to the train split only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lsx.data.base import Dataset
from lsx.data.datasets import stratified_split
from lsx.data.images import (
    SOURCE_SIZE_KEY,
    decode_image,
    normalize_mode,
    read_image_file,
    to_uint8,
)
from lsx.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")  # compared in lower case
MAX_FILES = 200_000  # per folder load
MAX_ARRAY_BYTES = 4 * 2**30  # float32 images in memory
COLOUR_TOLERANCE = 8  # grey JPEGs saved as RGB differ by a few levels between channels
N_NAMES_SHOWN = 5


@dataclass
class _ClassImages:
    """What was read from one class folder."""

    pixels: list[np.ndarray] = field(default_factory=list)  # (s, s) or (s, s, 3) uint8
    colour: list[bool] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one sentence per file, name first
    sizes: Counter = field(default_factory=Counter)  # original (width, height)
    conversions: Counter = field(default_factory=Counter)


def load_folder(path: str | Path, *, image_size: int = 32, max_files: int = MAX_FILES) -> Dataset:
    """Load a folder with one subfolder of images per class.

    Parameters
    ----------
    path : str or Path
        The folder; its subfolders are the classes.
    image_size : int
        Every image is resized to ``image_size`` x ``image_size``.
    max_files : int
        Refuse folders with more files than this in their class subfolders.

    Returns
    -------
    Dataset
        ``spec`` is ``"folder:<absolute path>"``; attribute ``"class"``.

    Raises
    ------
    DatasetError
        Missing path or not a folder, no class subfolders, only one class, too many files, too
        much memory, no readable image at all, or fewer than 2 classes with a readable image.
    """
    root = Path(path).expanduser().resolve()
    class_dirs, notes = _class_dirs(root)
    files = _list_files(root, class_dirs, max_files, notes)
    _check_memory(root, sum(len(f) for f in files.values()), image_size)
    read = {name: _read_class(paths, root, image_size) for name, paths in files.items()}
    kept = [name for name, r in read.items() if r.pixels]
    skipped = [reason for r in read.values() for reason in r.skipped]
    if not kept:
        raise DatasetError(
            f"No readable image in {root}: all {len(skipped)} files were skipped "
            f"({_examples(skipped)}). Put PNG, JPEG or WebP images in the class subfolders."
        )
    if len(kept) < 2:
        raise DatasetError(
            f"Only one class of {root} has a readable image ({kept[0]!r}); "
            f"{', '.join(repr(n) for n in read if n not in kept)} had none. A dataset needs at "
            "least 2 classes: add images to the other subfolders."
        )
    notes += _read_notes(read, kept, skipped, image_size)
    return _build(f"folder:{root}", {name: read[name] for name in kept}, image_size, notes)


def _class_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """Sorted, non-hidden subfolders of ``root``; errors for a missing, empty or 1-class folder."""
    if not root.exists():
        raise DatasetError(
            f"The folder {root} does not exist. Pass folder:PATH with the path of a folder that "
            "holds one subfolder of images per class."
        )
    if not root.is_dir():
        raise DatasetError(
            f"{root} is not a folder. Pass folder:PATH with a folder that holds one subfolder of "
            "images per class (not a single image or archive)."
        )
    dirs, loose = [], 0
    for entry in _scan(root):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            dirs.append(Path(entry.path))
        else:
            loose += 1
    dirs.sort()
    if not dirs:
        found = f" (it holds {_count(loose, 'file')} directly)" if loose else " (it is empty)"
        raise DatasetError(
            f"{root} has no class subfolders{found}. Put the images of each class in their own "
            "subfolder, e.g. shirts/red/*.png and shirts/blue/*.png."
        )
    if len(dirs) == 1:
        raise DatasetError(
            f"{root} has only one class subfolder ({dirs[0].name!r}). A dataset needs at least "
            "2 classes: add a subfolder of images for each other class."
        )
    notes = []
    if loose:
        notes.append(f"{_count(loose, 'file')} directly in {root.name} ignored (no class)")
    return dirs, notes


def _list_files(
    root: Path, class_dirs: list[Path], max_files: int, notes: list[str]
) -> dict[str, list[Path]]:
    """Files of each class subfolder, sorted; nested folders are noted, not entered."""
    files: dict[str, list[Path]] = {}
    total, nested = 0, 0
    for class_dir in class_dirs:
        paths = []
        for entry in _scan(class_dir):
            if entry.name.startswith("."):  # .DS_Store, ._x.png (AppleDouble): OS metadata
                continue
            if entry.is_dir():
                nested += 1
                continue
            total += 1
            if total > max_files:  # stop listing at once: a folder may hold millions of files
                raise DatasetError(
                    f"{root} holds more than {max_files:,} files in its class subfolders; lsx "
                    "loads at most that many into memory. Read it on demand instead: train "
                    "with `python -m lsx train --lazy ...`, encode it with `python -m lsx "
                    "encode --data folder:PATH`, or use a subset of the images."
                )
            paths.append(Path(entry.path))
        files[class_dir.name] = sorted(paths)
    if nested:
        notes.append(f"{_count(nested, 'nested subfolder')} ignored (only one level is read)")
    return files


def _scan(folder: Path) -> Iterator[os.DirEntry]:
    """Lazy ``os.scandir`` with a DatasetError instead of a bare OSError (permissions, races)."""
    try:
        with os.scandir(folder) as it:
            yield from it
    except OSError as err:
        raise DatasetError(
            f"Cannot list the folder {folder} ({err.strerror or err}). Check that it exists "
            "and that you may read it."
        ) from err


def _check_memory(root: Path, n_files: int, image_size: int) -> None:
    """Refuse loads whose float32 RGB array would exceed MAX_ARRAY_BYTES."""
    need = n_files * 3 * image_size * image_size * 4
    if need > MAX_ARRAY_BYTES:
        raise DatasetError(
            f"Loading {n_files:,} images of {root} at {image_size}x{image_size} would need "
            f"{need / 2**30:.1f} GiB; the limit is {MAX_ARRAY_BYTES / 2**30:.0f} GiB. Use a "
            "smaller image_size, or read it on demand (`python -m lsx train --lazy ...`, "
            "`python -m lsx encode --data folder:PATH`)."
        )


def _read_class(paths: list[Path], root: Path, image_size: int) -> _ClassImages:
    """Decode, normalise and resize every image file of one class; record what was skipped."""
    out = _ClassImages()
    for path in paths:
        name = str(path.relative_to(root))
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            out.skipped.append(f"{name} is not a .png, .jpg, .jpeg or .webp file")
            continue
        try:  # a regular file inside root only, read non-blocking with a byte cap
            data = read_image_file(path, root=root, name=name)
            img = decode_image(data, name=name, draft_size=(image_size,) * 2)
        except DatasetError as err:  # a bad file is skipped and reported
            out.skipped.append(_first_sentence(str(err)))
            continue
        out.sizes[img.info.get(SOURCE_SIZE_KEY, img.size)] += 1
        flat, conversion = normalize_mode(img)
        if conversion:
            out.conversions[conversion] += 1
        pixels = to_uint8(flat, size=(image_size, image_size))
        out.pixels.append(pixels)
        out.colour.append(pixels.ndim == 3 and _has_colour(pixels))
    return out


def _has_colour(rgb: np.ndarray) -> bool:
    """True if some pixel's channels differ by more than COLOUR_TOLERANCE levels."""
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return bool(spread.max() > COLOUR_TOLERANCE)


def _count(n: int, word: str) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _first_sentence(message: str) -> str:
    """The part of an error message before its advice."""
    end = message.find(". ")
    return message[:end] if end > 0 else message.rstrip(".")


def _examples(skipped: list[str]) -> str:
    """The first few skip reasons, for a note or message."""
    shown = "; ".join(skipped[:N_NAMES_SHOWN])
    return shown + ("; ..." if len(skipped) > N_NAMES_SHOWN else "")


def _read_notes(
    read: dict[str, _ClassImages], kept: list[str], skipped: list[str], size: int
) -> list[str]:
    """What the user should know about reading: skipped files and classes, conversions, sizes."""
    notes = []
    if skipped:
        notes.append(f"{_count(len(skipped), 'file')} skipped: {_examples(skipped)}")
    empty = [name for name in read if name not in kept]
    if empty:
        notes.append(f"classes with no readable image skipped: {', '.join(empty)}")
    conversions = sum((read[name].conversions for name in kept), Counter())
    for what, count in sorted(conversions.items()):
        notes.append(f"{what}: {_count(count, 'image')}")
    sizes = sum((read[name].sizes for name in kept), Counter())
    if set(sizes) != {(size, size)}:
        shown = ", ".join(f"{w}x{h}" for (w, h), _ in sizes.most_common(3))
        what = f"{len(sizes)} different sizes ({shown}" + (", ...)" if len(sizes) > 3 else ")")
        notes.append(
            f"images of {what if len(sizes) > 1 else shown} resized to {size}x{size} "
            "(stretched, aspect ratio not kept)"
        )
    return notes


def _build(spec: str, read: dict[str, _ClassImages], size: int, notes: list[str]) -> Dataset:
    """Stack the images, choose channels, split, and return the Dataset."""
    n_colour = sum(sum(r.colour) for r in read.values())
    channels = 3 if n_colour else 1
    x, y = [], []
    for label, r in enumerate(read.values()):
        for pixels in r.pixels:
            x.append(_as_channels(pixels, channels))
            y.append(label)
    n = len(x)
    if channels == 3:
        notes.append(f"3 channels (RGB): {n_colour} of {n} images have colour; grey ones copied")
    else:
        notes.append("1 channel (grey): no image has colour")
    x_all = np.stack(x).astype(np.float32) / np.float32(255.0)  # (n, C, size, size)
    y_all = np.asarray(y, dtype=np.int64)
    train_idx, test_idx = _split(y_all, list(read), notes)
    return Dataset(
        spec=spec,
        x_train=x_all[train_idx],
        x_test=x_all[test_idx],
        labels_train={"class": y_all[train_idx]},
        labels_test={"class": y_all[test_idx]},
        label_names={"class": tuple(read)},
        notes=tuple(notes),
    )


def _as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (s, s) or (s, s, 3) -> (channels, s, s); RGB -> grey uses Pillow's ITU-R 601 luma."""
    if pixels.ndim == 2:
        return np.repeat(pixels[None], channels, axis=0)
    if channels == 3:
        return pixels.transpose(2, 0, 1)
    luma = pixels @ np.array([0.299, 0.587, 0.114])  # only grey-looking RGB images get here
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[None]


def _split(y: np.ndarray, names: list[str], notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified 80/20 split; single-image classes go to train only (noted)."""
    counts = np.bincount(y, minlength=len(names))
    single = np.flatnonzero(counts == 1)
    rest = np.flatnonzero(counts[y] >= 2)
    if len(rest) == 0:
        raise DatasetError(
            "Every class has a single readable image, so there is nothing to test on. Add at "
            "least one more image to some class."
        )
    if len(single):
        notes.append(
            "classes with a single image are in the train split only: "
            + ", ".join(names[i] for i in single)
        )
    train_rest, test_idx = stratified_split(y[rest])
    train_idx = np.concatenate([np.flatnonzero(counts[y] == 1), rest[train_rest]])
    return train_idx.astype(np.int64), rest[test_idx].astype(np.int64)
