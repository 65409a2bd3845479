"""Uploaded images as model inputs, with a note for everything done to them on the way.

:func:`prepare_upload` decodes untrusted bytes with :func:`lsx.data.images.decode_image` (size and
pixel caps, decompression bombs as errors, format allowlist PNG/JPEG/WebP/BMP, truncation), then
turns the image into exactly what the model sees: EXIF rotation applied, first frame of an
animation, mode normalised (palette, 16-bit, RGBA, CMYK, grey), resized to the model's input size
and channel count. Every failure is a :class:`~lsx.errors.DatasetError` naming the file, so a page
can report it per file and carry on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsx.data.images import (
    ANIMATION_KEY,
    FORMAT_KEY,
    MAX_BYTES,
    ORIENTATION_KEY,
    SOURCE_SIZE_KEY,
    UPLOAD_FORMATS,
    decode_image,
    normalize_mode,
    to_array,
)
from lsx.errors import DatasetError

UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp")  # st.file_uploader(type=...)
MAX_UPLOAD_FILES = 50
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
