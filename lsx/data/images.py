"""Safe image decoding and mode normalisation, shared by the folder loader and uploads.

The order: byte cap -> ``Image.open`` with a format allowlist and
decompression-bomb warnings as errors -> lsx pixel cap from the header -> ``load()`` inside the
try -> ``ImageOps.exif_transpose`` -> explicit mode normalisation -> resize. Every failure class is
a :class:`~lsx.errors.DatasetError` with its own message.

Transparent pixels are composited onto a WHITE background (``BACKGROUND``): most transparent
product and clothes images are meant to be seen on a white page.
"""

from __future__ import annotations

import os
import stat
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lsx.errors import DatasetError
from lsx.files import read_bytes_capped

MAX_BYTES = 20_000_000  # 20 MB; a 40 MP JPEG is well below this
MAX_PIXELS = 40_000_000  # lsx cap, far below Pillow's 89 MP warning
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")  # no TIFF, FITS, PSD, EPS, BMP, GIF
UPLOAD_FORMATS = (*ALLOWED_FORMATS, "BMP")  # uploads on the Lookup page also take BMP
ANIMATION_KEY = "lsx_n_frames"  # img.info key: frame count of an animation read as frame 1
ORIENTATION_KEY = "lsx_exif_orientation"  # img.info key: the EXIF orientation that was applied
FORMAT_KEY = "lsx_format"  # img.info key: the file's format (PNG, JPEG, WEBP, BMP, MPO)
BACKGROUND = 255  # white, see the module docstring
SOURCE_SIZE_KEY = "lsx_source_size"  # img.info key: (width, height) as stored, before draft()
RESAMPLE = Image.Resampling.BILINEAR  # Pillow widens the kernel when shrinking (antialiased)

# Magic bytes of formats we refuse, only to name them in the message (never parsed).
_KNOWN_MAGIC = {
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"8BPS": "PSD",
    b"SIMPLE  =": "FITS",
    b"%!PS": "EPS",
    b"%PDF": "PDF",
    b"\x00\x00\x01\x00": "ICO",
}


def read_image_file(
    path: str | Path,
    *,
    root: str | Path | None = None,
    name: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> bytes:
    """The bytes of an image file, read only if it is a regular file inside ``root``.

    ``os.lstat`` first (links are not followed): a FIFO, a device, a socket or a folder is
    refused, and so is a path that resolves outside ``root`` through a symbolic link (its own or
    a parent folder's), or a link whose target is not a regular file. The file is then opened
    non-blocking and read with ``max_bytes`` enforced while reading
    (:func:`lsx.files.read_bytes_capped`), so a file that grows, or a link swapped for
    ``/dev/zero`` after the check, cannot read forever.

    Parameters
    ----------
    path : str or Path
    root : str or Path or None
        The folder that symbolic links must stay inside; None allows no link at all.
    name : str or None
        What to call the file in messages (default: the path).
    max_bytes : int
        Refuse files larger than this.

    Raises
    ------
    DatasetError
        Not a regular file, a link out of ``root``, too large, or unreadable; the message
        starts with the name and says why.
    """
    path = Path(path)
    name = name or str(path)
    try:
        info = os.lstat(path)
        real = Path(os.path.realpath(path))  # through every link, the file's own or a folder's
        if root is not None and not real.is_relative_to(os.path.realpath(root)):
            raise DatasetError(
                f"{name} is a link to {real}, outside the dataset folder. Copy the image into "
                "the folder instead."
            )
        if stat.S_ISLNK(info.st_mode):
            if root is None:
                raise DatasetError(f"{name} is a symbolic link; pass the image file itself.")
            info = os.stat(real)
    except OSError as err:  # vanished, no permission, a broken link
        raise DatasetError(f"{name} could not be read ({err.strerror or err}).") from err
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise DatasetError(
            f"{name} is {kind}, not a regular file. Only image files are read; remove it."
        )
    if info.st_size > max_bytes:  # never read a huge file into memory
        raise DatasetError(f"{name} is larger than {max_bytes / 1e6:.0f} MB")
    return read_bytes_capped(path, max_bytes, name, DatasetError)


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
    first_frame: bool = False,
) -> Image.Image:
    """Decode untrusted PNG, JPEG or WebP bytes into a fully loaded, upright PIL image.

    Parameters
    ----------
    data : bytes
        The file content.
    name : str
        What to call the image in error messages (a file name).
    max_bytes, max_pixels : int
        Caps on the file size and on width * height (read from the header, before decoding).
    draft_size : (width, height) or None
        If given, JPEGs are decoded at the smallest DCT scale that is still at least this large
        (much faster for big photos that will be shrunk anyway).
    formats : tuple of str
        Pillow format names to accept (default PNG, JPEG, WebP; ``UPLOAD_FORMATS`` adds BMP).
    first_frame : bool
        Read an animation's first frame instead of refusing it; ``img.info["lsx_n_frames"]``
        then holds the frame count.

    Returns
    -------
    PIL.Image.Image
        Loaded, with its EXIF orientation applied; its mode is whatever the file holds.
        ``img.info["lsx_source_size"]`` is the upright (width, height) stored in the file, which
        differs from ``img.size`` when ``draft_size`` made the decoder shrink a JPEG.
        ``img.info["lsx_exif_orientation"]`` is the EXIF orientation tag that was applied (1 when
        the file had none).

    Raises
    ------
    DatasetError
        Empty file, file too large, too many pixels, not an image, an unsupported format, an
        animation, or a truncated or corrupt file; each with its own message.
    """
    readable = _format_list(formats)
    if len(data) == 0:
        raise DatasetError(
            f"{name} is empty (0 bytes). Choose a {readable.replace(' and ', ' or ')} file."
        )
    if len(data) > max_bytes:
        raise DatasetError(
            f"{name} is too large: {len(data) / 1e6:.1f} MB; lsx reads images of at most "
            f"{max_bytes / 1e6:.0f} MB. Downscale or recompress it."
        )
    with warnings.catch_warnings():
        # Pillow only warns between 89 and 179 MP; treat the warning as the error it is.
        # (catch_warnings is process-global, not thread-safe; the lsx pixel cap below is
        # checked regardless, so a concurrent reset of the filter cannot let a bomb through.)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, name, formats)
        _check_header(img, name, max_pixels, first_frame)
        img.info[SOURCE_SIZE_KEY] = img.size  # before draft() shrinks it
        if draft_size is not None and img.format in ("JPEG", "MPO"):
            img.draft(img.mode, draft_size)
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise DatasetError(
                f"{name} is truncated or corrupt ({err}). Re-export or re-download the file."
            ) from err
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)  # 0x0112: EXIF Orientation
        upright = ImageOps.exif_transpose(img)  # copies info
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(
            f"{name} has corrupt EXIF metadata ({err}). Re-export the image without metadata."
        ) from err
    if (upright.width > upright.height) != (img.width > img.height):  # rotated by 90 degrees
        upright.info[SOURCE_SIZE_KEY] = upright.info[SOURCE_SIZE_KEY][::-1]
    upright.info[ORIENTATION_KEY] = orientation
    upright.info[FORMAT_KEY] = img.format  # a transposed copy has no .format of its own
    if first_frame and getattr(img, "is_animated", False):
        upright.info[ANIMATION_KEY] = int(getattr(img, "n_frames", 1))
    return upright


def _format_list(formats: tuple[str, ...]) -> str:
    """``"PNG, JPEG and WebP"``."""
    names = ["WebP" if f == "WEBP" else f for f in formats]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _open(data: bytes, name: str, formats: tuple[str, ...] = ALLOWED_FORMATS) -> Image.Image:
    """``Image.open`` restricted to the allowlist, with one message per failure class."""
    readable = _format_list(formats)
    try:
        return Image.open(BytesIO(data), formats=list(formats))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DatasetError(
            f"{name} is too large: its header claims more pixels than Pillow allows ({err}). "
            "Downscale it first."
        ) from err
    except UnidentifiedImageError as err:
        fmt = next((f for magic, f in _KNOWN_MAGIC.items() if data.startswith(magic)), None)
        if fmt is not None:
            raise DatasetError(
                f"{name} is a {fmt} file; lsx reads {readable} only. Convert it to PNG."
            ) from err
        raise DatasetError(
            f"{name} is not an image lsx can read (no {readable.replace(' and ', ' or ')} "
            "header found). "
            "Check that the file really is an image."
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # header present but broken
        raise DatasetError(
            f"{name} is truncated or corrupt ({err}). Re-export or re-download the file."
        ) from err


def _check_header(img: Image.Image, name: str, max_pixels: int, first_frame: bool = False) -> None:
    """lsx pixel cap and the no-animation rule, from header data only (nothing decoded yet)."""
    width, height = img.size
    if width * height > max_pixels:
        raise DatasetError(
            f"{name} is too large: {width}x{height} pixels ({width * height / 1e6:.0f} MP); lsx "
            f"reads images of at most {max_pixels / 1e6:.0f} MP. Downscale it first."
        )
    # MPO is a JPEG with extra frames (phone depth maps, previews): its first frame is the photo.
    if img.format != "MPO" and not first_frame and getattr(img, "is_animated", False):
        raise DatasetError(
            f"{name} is an animated {img.format}; lsx reads still images only. "
            "Save a single frame as PNG."
        )


def normalize_mode(img: Image.Image, *, background: int = BACKGROUND) -> tuple[Image.Image, str]:
    """Convert any decoded mode to ``"L"`` or ``"RGB"`` and say what was done.

    Parameters
    ----------
    img : PIL.Image.Image
        A loaded image, e.g. from :func:`decode_image`.
    background : int
        Grey level 0..255 that transparent pixels are composited onto (default white).

    Returns
    -------
    image : PIL.Image.Image
        In mode ``"L"`` (grey) or ``"RGB"``.
    conversion : str
        ``""`` if the mode was already L or RGB, else a short description such as
        ``"RGBA composited on white"`` or ``"I;16 rescaled to 8 bit"``.
    """
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" not in img.info:
        return img, ""
    if mode == "1":
        return img.convert("L"), "1-bit converted to grey"
    if mode.startswith("I") or mode == "F":
        return _rescale_high_depth(img), f"{mode} rescaled to 8 bit"
    if mode == "P" and "transparency" not in img.info:
        return img.convert("RGB"), "P (palette) converted to RGB"
    if mode in ("L", "LA", "La", "RGB", "RGBA", "RGBa", "P", "PA"):
        # Alpha (or a tRNS colour key) -> composite; Pillow's convert applies tRNS and
        # un-premultiplies La/RGBa.
        base = "L" if mode in ("L", "LA", "La") else "RGB"
        with_alpha = img.convert(base + "A")
        flat = Image.new(base, img.size, (background,) * len(base))  # an int is packed for RGB
        flat.paste(with_alpha.convert(base), mask=with_alpha.getchannel("A"))
        shade = "white" if background == 255 else f"grey level {background}"
        what = f"{mode} with transparency" if mode in ("L", "RGB", "P") else mode
        return flat, f"{what} composited on {shade}"
    # CMYK, YCbCr, LAB, HSV: Pillow's conversion is naive for CMYK (no ICC profile).
    return img.convert("RGB"), f"{mode} converted to RGB" + (" (no ICC)" if mode == "CMYK" else "")


def _rescale_high_depth(img: Image.Image) -> Image.Image:
    """16/32-bit grey -> 8-bit L by scaling, not clipping (Pillow clips: #3159, #5403)."""
    a = np.asarray(img, dtype=np.float64)  # (height, width)
    if img.mode == "F":
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    elif img.mode.startswith("I;16") or (a.min() >= 0 and a.max() <= 65535):
        scaled = a / 257.0  # full 16-bit range -> 0..255, keeps absolute brightness
    else:  # 32-bit values outside 16 bits: min-max is the only sensible mapping
        lo, hi = float(a.min()), float(a.max())
        scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))  # mode L


def to_uint8(img: Image.Image, *, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``L`` or ``RGB`` image to ``size = (height, width)`` and return its pixels.

    Returns
    -------
    ndarray of shape (height, width) or (height, width, 3), uint8
    """
    if img.mode not in ("L", "RGB"):
        raise DatasetError(f"to_uint8 needs an L or RGB image; got mode {img.mode}.")
    height, width = size
    if img.size != (width, height):
        img = img.resize((width, height), RESAMPLE)  # aspect ratio is not kept
    return np.asarray(img, dtype=np.uint8)


def to_array(
    img: Image.Image, *, size: tuple[int, int], channels: int, background: int = BACKGROUND
) -> np.ndarray:
    """Turn any decoded image into a model input: normalised mode, resized, scaled to [0, 1].

    Parameters
    ----------
    img : PIL.Image.Image
        A loaded image (see :func:`decode_image`).
    size : (height, width)
        Output size; the aspect ratio is not kept (the image is stretched).
    channels : {1, 3}
        1 -> grey (ITU-R 601-2 luma, Pillow's ``convert("L")``); 3 -> RGB (grey is copied).
    background : int
        Grey level that transparent pixels are composited onto (default white).

    Returns
    -------
    ndarray of shape (channels, height, width), float32 in [0, 1]

    Raises
    ------
    DatasetError
        If ``channels`` is not 1 or 3.

    Notes
    -----
    What mode conversion happened is reported by :func:`normalize_mode`, which this calls.
    """
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 or 3; got {channels!r}.")
    flat, _ = normalize_mode(img, background=background)
    flat = flat.convert("L" if channels == 1 else "RGB")
    pixels = to_uint8(flat, size=size).astype(np.float32) / 255.0
    return pixels[None] if channels == 1 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def resize_batch(x: np.ndarray, size: int) -> np.ndarray:
    """Resize float images ``(n, C, H, W)`` in [0, 1] to ``(n, C, size, size)`` with Pillow.

    Works in float (Pillow mode ``"F"``) so no precision is lost; bilinear, antialiased when
    shrinking.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    out = np.empty((n, c, size, size), dtype=np.float32)
    for i in range(n):
        for k in range(c):
            plane = Image.fromarray(np.ascontiguousarray(x[i, k], dtype=np.float32))  # mode F
            out[i, k] = np.asarray(plane.resize((size, size), RESAMPLE))
    return np.clip(out, 0.0, 1.0, out=out)
