"""Image files for upload tests, one per case of issue 3's "bad input" list (built in memory)."""

from __future__ import annotations

import functools
import struct
import zlib
from io import BytesIO

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient(width: int = 40, height: int = 30) -> Image.Image:
    """An RGB gradient whose left and right halves differ (so rotations are visible)."""
    row = np.linspace(0, 255, width).astype(np.uint8)
    r = np.tile(row, (height, 1))
    g = np.tile(np.linspace(0, 255, height).astype(np.uint8)[:, None], (1, width))
    b = np.full((height, width), 90, np.uint8)
    return Image.fromarray(np.stack([r, g, b], axis=2), mode="RGB")


def png_header(width: int, height: int) -> bytes:
    """Only a PNG signature, an IHDR claiming width x height, and IEND (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def exif_jpeg(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(gradient(), "JPEG", exif=exif.tobytes(), quality=95)


def animated_png() -> bytes:
    frames = [Image.new("L", (16, 16), v) for v in (30, 200, 120)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def i16_png() -> bytes:
    a = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    return encode(Image.fromarray(a))  # mode I;16 (Pillow infers it from uint16)


def palette_png() -> bytes:
    img = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(img, transparency=0)


@functools.cache
def good_cases() -> dict[str, bytes]:
    """Readable files: name -> bytes (the name's extension matches the content)."""
    rgba = gradient().convert("RGBA")
    rgba.putalpha(128)
    return {
        "grey.png": encode(gradient().convert("L")),
        "colour.jpg": encode(gradient(), "JPEG"),
        "colour.webp": encode(gradient(), "WEBP"),
        "colour.bmp": encode(gradient(), "BMP"),
        "rgba.png": encode(rgba),
        "palette.png": palette_png(),
        "sixteen_bit.png": i16_png(),
        "cmyk.jpg": encode(gradient().convert("CMYK"), "JPEG"),
        "rotated.jpg": exif_jpeg(6),
        "animated.png": animated_png(),
        "big.jpg": encode(gradient(3000, 2000), "JPEG", quality=70),
    }


@functools.cache
def bad_cases() -> dict[str, tuple[bytes, str]]:
    """Unreadable files: name -> (bytes, regex of the expected message)."""
    png = encode(gradient())
    return {
        "empty.png": (b"", r"is empty \(0 bytes\)"),
        "noise.png": (bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)),
                      r"is not an image lsx can read"),
        "notes.png": (b"hello, this is text\n" * 10, r"is not an image lsx can read"),
        "truncated.png": (png[: len(png) // 2], r"is truncated or corrupt"),
        "truncated.jpg": (encode(gradient(), "JPEG")[:300], r"is truncated or corrupt"),
        "bomb.png": (png_header(20000, 20000), r"is too large"),
        "warning_band.png": (png_header(10000, 10000), r"is too large"),
        "picture.png": (encode(gradient(), "GIF"), r"is a GIF file; lsx reads PNG, JPEG, WebP and"),
    }  # fmt: skip
