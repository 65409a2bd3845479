"""Uploaded images as model inputs, with a note for everything done to them on the way.

:func:`prepare_upload` decodes untrusted bytes with :func:`lsx.data.images.decode_image` (size and
pixel caps, decompression bombs as errors, format allowlist PNG/JPEG/WebP/BMP, truncation), then
turns the image into exactly what the model sees: EXIF rotation applied, first frame of an
animation, mode normalised (palette, 16-bit, RGBA, CMYK, grey), resized to the model's input size
and channel count. Every failure is a :class:`~lsx.errors.DatasetError` naming the file, so a page
can report it per file and carry on with the others.

Before that, :func:`type_error` checks the file name's extension (the uploader accepts every file
so that a refusal is a visible message, not a browser tooltip), and :func:`decode_cost` reads the
header only to say how many pixels decoding will produce, for the app's per-session decode budget
(:data:`DECODE_BUDGET_PIXELS` per :data:`DECODE_WINDOW_S`; :func:`pixels_spent`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image

from lsx.data.images import (
    ANIMATION_KEY,
    FORMAT_KEY,
    MAX_BYTES,
    MAX_PIXELS,
    ORIENTATION_KEY,
    SOURCE_SIZE_KEY,
    UPLOAD_FORMATS,
    decode_image,
    normalize_mode,
    to_array,
)
from lsx.errors import DatasetError

UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp")  # checked by type_error
MAX_UPLOAD_FILES = 50
# Per browser session: pixels decoded from new uploads in any DECODE_WINDOW_S seconds (twenty
# 40 MP PNGs cost 14 s of server time; 200 MP is 5 of them, or 1,000 JPEG photos decoded at the
# reduced DCT scale a small model input allows). Files over the budget wait, with a message.
DECODE_BUDGET_PIXELS = 200_000_000
DECODE_WINDOW_S = 60.0
_TYPE_NAMES = {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF", "tiff": "TIFF", "svg": "SVG"}
MUCH_LARGER = 8  # a side this many times the model's is "far larger": say detail is lost


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One upload as the model sees it.

    Attributes
    ----------
    name : str
    x : ndarray of shape (C, H, W), float32 in [0, 1]
        The model input (``input_shape`` of the checkpoint).
    source_size : (width, height)
        As stored in the file, upright.
    format : str
        Pillow's format name (PNG, JPEG, WEBP, BMP, MPO).
    notes : tuple of str
        What was done: rotation, first frame, mode conversion, resize.
    """

    name: str
    x: np.ndarray
    source_size: tuple[int, int]
    format: str
    notes: tuple[str, ...]


def prepare_upload(
    data: bytes,
    input_shape: tuple[int, int, int],
    *,
    name: str = "image",
    max_bytes: int = MAX_BYTES,
) -> PreparedImage:
    """Decode an uploaded file and turn it into a model input.

    Parameters
    ----------
    data : bytes
        The file content (untrusted).
    input_shape : (channels, height, width)
        The checkpoint's input shape.
    name : str
        File name for messages.
    max_bytes : int
        Size cap, checked again here (Streamlit's own limit is only a first fence).

    Returns
    -------
    PreparedImage

    Raises
    ------
    DatasetError
        Empty, too large, not an image, unsupported format, truncated/corrupt, bomb.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DatasetError(f"{name}: expected the file's bytes; got {type(data).__name__}.")
    data = bytes(data)
    c, h, w = input_shape
    img = decode_image(
        data,
        name=name,
        max_bytes=max_bytes,
        draft_size=(w, h),
        formats=UPLOAD_FORMATS,
        first_frame=True,
    )
    notes = []
    orientation = int(img.info.get(ORIENTATION_KEY, 1))
    if orientation != 1:
        notes.append(f"rotated upright (EXIF orientation {orientation})")
    frames = img.info.get(ANIMATION_KEY)
    if frames:
        notes.append(f"animated ({frames} frames): the first frame is used")
    flat, conversion = normalize_mode(img)
    if conversion:
        notes.append(conversion)
    if flat.mode == "RGB" and c == 1:
        notes.append("colour converted to grey (luma), as the model expects")
    elif flat.mode == "L" and c == 3:
        notes.append("grey copied to 3 channels, as the model expects colour")
    src_w, src_h = img.info.get(SOURCE_SIZE_KEY, img.size)
    if (src_w, src_h) != (w, h):
        notes.append(f"resized from {src_w}x{src_h} to {w}x{h} (aspect ratio not kept)")
    if max(src_w / w, src_h / h) >= MUCH_LARGER:
        notes.append("far larger than the model input: fine detail is lost in the resize")
    x = to_array(flat, size=(h, w), channels=c)  # flat is L or RGB: not normalised twice
    return PreparedImage(
        name,
        x,
        (int(src_w), int(src_h)),
        str(img.info.get(FORMAT_KEY) or img.format or "?"),
        tuple(notes),
    )


def type_error(name: str, where: str = "the Lookup page") -> str | None:
    """Why a file name's type is not one ``where`` reads, or None if it is.

    Parameters
    ----------
    name : str
        The uploaded file's name (untrusted: a NUL or a second extension does not help).
    where : str
        The page named in the message.

    Returns
    -------
    str or None
        ``"drawing.svg has the type SVG (.svg); ..."`` naming the file, its type and the
        supported types; None for ``.png``, ``.jpg``, ``.jpeg``, ``.webp``, ``.bmp`` (any case).
        The content is checked again when it is decoded (a garbage ``x.png`` is refused there).
    """
    shown = name.replace("\0", "\\0")
    stem, dot, ext = name.rpartition(".")
    ext = ext.lower() if dot and stem else ""
    if ext in UPLOAD_EXTENSIONS and "\0" not in name:
        return None
    supported = ", ".join(f".{e}" for e in UPLOAD_EXTENSIONS)
    if not ext or "/" in ext or len(ext) > 10:
        what = "has no file extension"
    else:
        what = f"has the type {_TYPE_NAMES.get(ext, ext.upper())} (.{ext})"
    return (
        f"{shown} {what}; {where} reads PNG, JPEG, WebP and BMP images ({supported}). "
        "Convert it to PNG and upload it again."
    )


def decode_cost(data: bytes, input_shape: tuple[int, int, int]) -> int:
    """Pixels that decoding ``data`` for ``input_shape`` will produce, from its header only.

    A JPEG counts at the reduced DCT scale :func:`prepare_upload` decodes it at. A file whose
    header cannot be read, or that is over the pixel cap, costs 0: it is refused before any
    pixel is decoded.

    Parameters
    ----------
    data : bytes
        The file content (untrusted).
    input_shape : (channels, height, width)
        The checkpoint's input shape.

    Returns
    -------
    int
    """
    _, h, w = input_shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(BytesIO(bytes(data)), formats=list(UPLOAD_FORMATS))
            width, height = img.size
            if width * height > MAX_PIXELS:
                return 0
            if img.format in ("JPEG", "MPO"):
                img.draft(img.mode, (w, h))  # changes only the size it will decode at
            return int(img.size[0] * img.size[1])
    except Exception:  # noqa: BLE001 - any unreadable header is refused by decode_image later
        return 0


def pixels_spent(log: Iterable[tuple[float, int]], now: float) -> int:
    """Pixels decoded in the last :data:`DECODE_WINDOW_S` seconds of a ``(time, pixels)`` log.

    Parameters
    ----------
    log : iterable of (float, int)
        When (``time.monotonic()``) and how many pixels each decode cost.
    now : float
        The current ``time.monotonic()``.
    """
    return sum(px for t, px in log if now - t < DECODE_WINDOW_S)
