"""Safe decoding and mode normalisation of untrusted images."""

from __future__ import annotations

import struct
import time
import zlib
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from lsx.data.images import (
    SOURCE_SIZE_KEY,
    decode_image,
    normalize_mode,
    resize_batch,
    to_array,
)
from lsx.errors import DatasetError
from tests.waiting import within


def _encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only a signature, an IHDR claiming width x height, and IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _gradient(width: int = 64, height: int = 32) -> Image.Image:
    row = np.linspace(0, 255, width).astype(np.uint8)
    rgb = np.stack([np.tile(row, (height, 1)), np.full((height, width), 80, np.uint8)] * 2)[:3]
    return Image.fromarray(rgb.transpose(1, 2, 0).copy(), mode="RGB")


def test_header_bomb_rejected_fast_then_valid_png_decodes():
    start = time.perf_counter()
    with pytest.raises(DatasetError, match=r"bomb\.png is too large"):
        decode_image(_png_header(20000, 20000), name="bomb.png")
    assert time.perf_counter() - start < 1.0
    img = decode_image(_encode(Image.new("RGB", (64, 64), "red")))
    assert img.size == (64, 64)
    assert img.mode == "RGB"


@pytest.mark.parametrize(("width", "height"), [(10000, 10000), (7000, 7000)])
def test_warning_band_and_lsx_pixel_cap_rejected(width, height):
    # 100 MP only makes Pillow warn; 49 MP passes Pillow but not the lsx 40 MP cap.
    with pytest.raises(DatasetError, match=r"is too large"):
        decode_image(_png_header(width, height))


def test_byte_cap():
    data = _encode(Image.new("L", (32, 32)))
    with pytest.raises(DatasetError, match=r"too large: 0\.0 MB; lsx reads images of at most"):
        decode_image(data, max_bytes=len(data) - 1)


def test_zero_bytes():
    with pytest.raises(DatasetError, match=r"empty\.png is empty \(0 bytes\)"):
        decode_image(b"", name="empty.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    data = _encode(_gradient(256, 256), fmt)
    with pytest.raises(DatasetError, match=r"cut\.img is truncated or corrupt"):
        decode_image(data[: len(data) // 2], name="cut.img")


def test_random_bytes_named_png():
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(DatasetError, match=r"noise\.png is not an image lsx can read"):
        decode_image(data, name="noise.png")


@pytest.mark.parametrize(("fmt", "label"), [("BMP", "BMP"), ("GIF", "GIF"), ("TIFF", "TIFF")])
def test_other_formats_rejected_by_name(fmt, label):
    data = _encode(Image.new("RGB", (8, 8)), fmt)
    with pytest.raises(DatasetError, match=rf"x\.png is a {label} file; lsx reads PNG, JPEG"):
        decode_image(data, name="x.png")


def test_animated_png_rejected():
    frames = [Image.new("L", (8, 8), v) for v in (0, 255)]
    data = _encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(DatasetError, match=r"animated PNG; lsx reads still images only"):
        decode_image(data)


@pytest.mark.parametrize(("orientation", "rotate"), [(6, Image.Transpose.ROTATE_270), (8, None)])
def test_exif_orientation_applied(orientation, rotate):
    img = _gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(_encode(img, "JPEG", exif=exif, quality=95))
    assert decoded.size == (20, 40)  # transposed
    assert decoded.info[SOURCE_SIZE_KEY] == (20, 40)
    rotate = rotate or Image.Transpose.ROTATE_90
    expected = np.asarray(decode_image(_encode(img, "JPEG", quality=95)).transpose(rotate))
    diff = np.abs(np.asarray(decoded, dtype=float) - expected).mean()
    assert diff < 3.0  # only JPEG noise


def test_jpeg_draft_keeps_source_size():
    data = _encode(_gradient(512, 256), "JPEG")
    img = decode_image(data, draft_size=(32, 32))
    assert img.size[0] < 512
    assert img.info[SOURCE_SIZE_KEY] == (512, 256)


def test_mpo_phone_jpeg_is_read_as_its_first_frame():
    frames = [Image.new("RGB", (40, 20), c) for c in ("red", "blue")]
    data = _encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    img = decode_image(data, name="phone.jpg")
    assert img.size == (40, 20)
    assert img.getpixel((0, 0))[0] > 240  # the red first frame


def test_i16_gradient_keeps_levels_instead_of_clipping():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))  # (4, 256)
    img = decode_image(_encode(Image.fromarray(ramp)))
    assert img.mode.startswith("I")
    x = to_array(img, size=(4, 256), channels=1)
    assert x.shape == (1, 4, 256)
    assert x.dtype == np.float32
    assert len(np.unique(x)) >= 200
    assert x.min() == 0.0
    assert x.max() == 1.0
    _, conversion = normalize_mode(img)
    assert "rescaled to 8 bit" in conversion


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_composited_on_white(mode):
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent ...
    rgba.paste((200, 10, 10, 255), (0, 0, 4, 8))  # ... except an opaque red left half
    if mode == "LA":
        img = rgba.convert("LA")
    elif mode == "P":
        img = rgba.convert("RGB").quantize(4)
        img.info["transparency"] = img.getpixel((7, 7))  # palette index of the right half
    else:
        img = rgba
    img = decode_image(_encode(img))
    assert img.mode == mode
    flat, conversion = normalize_mode(img)
    assert flat.mode in ("L", "RGB")
    assert "composited on white" in conversion
    x = to_array(img, size=(8, 8), channels=3)
    assert np.all(x[:, :, 4:] == 1.0)  # transparent -> white
    assert x[0, 0, 0] < 0.9  # opaque part kept


def test_cmyk_jpeg_becomes_rgb():
    img = decode_image(_encode(Image.new("CMYK", (16, 8), (0, 255, 255, 0)), "JPEG"))
    assert img.mode == "CMYK"
    flat, conversion = normalize_mode(img)
    assert flat.mode == "RGB"
    assert "CMYK converted to RGB" in conversion
    x = to_array(img, size=(8, 8), channels=3)
    assert x[0].mean() > 0.9
    assert x[1].mean() < 0.1


def test_grey_and_colour_channel_conversion():
    grey = Image.fromarray(np.full((8, 8), 128, np.uint8))
    x = to_array(grey, size=(4, 4), channels=3)
    assert x.shape == (3, 4, 4)
    assert np.all(x == x[0])
    assert normalize_mode(grey) == (grey, "")
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    y = to_array(red, size=(4, 4), channels=1)
    assert y.shape == (1, 4, 4)
    assert y[0, 0, 0] == pytest.approx(76 / 255, abs=1 / 255)


def test_to_array_resizes_and_scales():
    x = to_array(_gradient(64, 32), size=(16, 24), channels=3)
    assert x.shape == (3, 16, 24)
    assert x.dtype == np.float32
    assert 0.0 <= x.min() < 0.1
    assert 0.9 < x.max() <= 1.0
    with pytest.raises(DatasetError, match=r"channels must be 1 or 3; got 2"):
        to_array(_gradient(), size=(8, 8), channels=2)


def test_resize_batch():
    x = np.random.default_rng(0).random((3, 2, 8, 8), dtype=np.float32)
    y = resize_batch(x, 16)
    assert y.shape == (3, 2, 16, 16)
    assert y.dtype == np.float32
    assert abs(y.mean() - x.mean()) < 0.02
    assert resize_batch(x, 8) is x


# ------------------------------------------------------------------------------ reading from a path


def _release_fifo(path) -> None:
    """A writer that opens and closes gives a (regressed) blocked reader EOF."""
    import os

    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_read_image_file_refuses_a_fifo_without_blocking(tmp_path):
    import os

    from lsx.data.images import read_image_file

    os.mkfifo(tmp_path / "p.png")
    try:
        err = within(10, lambda: read_image_file(tmp_path / "p.png", root=tmp_path, name="p.png"))
    finally:
        _release_fifo(tmp_path / "p.png")
    assert isinstance(err, DatasetError)
    assert str(err).startswith("p.png is a FIFO, not a regular file")


def test_read_image_file_refuses_links_out_of_the_folder_and_devices(tmp_path):
    from lsx.data.images import read_image_file

    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(_encode(_gradient()))
    (root / "z.png").symlink_to("/dev/zero")
    (root / "out.png").symlink_to(outside)
    (root / "real.png").write_bytes(_encode(_gradient()))
    (root / "in.png").symlink_to(root / "real.png")
    for name, message in [("z.png", "outside the dataset folder"), ("out.png", "outside the")]:
        err = within(10, lambda n=name: read_image_file(root / n, root=root, name=n))
        assert isinstance(err, DatasetError)
        assert message in str(err)
    assert read_image_file(root / "in.png", root=root) == outside.read_bytes()  # a link inside
    with pytest.raises(DatasetError, match="is a symbolic link; pass the image file itself"):
        read_image_file(root / "in.png")  # no root: no link at all
    err = within(10, lambda: read_image_file("/dev/zero", root="/dev", name="zero"))
    assert isinstance(err, DatasetError)
    assert "zero is a device or socket, not a regular file" in str(err)


def test_read_image_file_enforces_the_byte_cap_while_reading(tmp_path, monkeypatch):
    import os

    from lsx.data.images import read_image_file

    path = tmp_path / "a.png"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(DatasetError, match="a.png is larger than"):
        read_image_file(path, root=tmp_path, name="a.png", max_bytes=4000)
    real_lstat, real_fstat = os.lstat, os.fstat

    def small(st: os.stat_result) -> os.stat_result:  # says 10 bytes: grew after the check
        return os.stat_result((*st[:6], 10, *st[7:]))

    monkeypatch.setattr(os, "lstat", lambda p: small(real_lstat(p)))
    monkeypatch.setattr(os, "fstat", lambda fd: small(real_fstat(fd)))
    with pytest.raises(DatasetError, match="too large: more bytes than its size said"):
        read_image_file(path, root=tmp_path, name="a.png", max_bytes=4000)
