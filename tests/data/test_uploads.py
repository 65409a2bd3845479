"""Uploads as model inputs (lsx.data.uploads): every case of issue 3's bad-input list gets a
model input with a note, or a DatasetError with its own message; vocabulary files."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from lsx.data.images import decode_image
from lsx.data.uploads import prepare_upload
from lsx.data.vocabulary import VOCABULARY_NAME, read_vocabulary, vocabulary_for
from lsx.errors import DatasetError
from tests.data.upload_cases import bad_cases, encode, exif_jpeg, good_cases, gradient

NOTES = {
    "rgba.png": r"RGBA composited on white",
    "palette.png": r"P with transparency composited on white",
    "sixteen_bit.png": r"I;16 rescaled to 8 bit",
    "cmyk.jpg": r"CMYK converted to RGB \(no ICC\)",
    "rotated.jpg": r"rotated upright \(EXIF orientation 6\)",
    "animated.png": r"animated \(3 frames\): the first frame is used",
    "big.jpg": r"far larger than the model input",
    "colour.bmp": r"resized from 40x30 to ",
}


@pytest.mark.parametrize("name", sorted(good_cases()))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_readable_uploads_become_model_inputs(name, shape):
    prep = prepare_upload(good_cases()[name], shape, name=name)
    assert prep.x.shape == shape
    assert prep.x.dtype == np.float32
    assert 0.0 <= prep.x.min()
    assert prep.x.max() <= 1.0
    if name in NOTES:
        assert any(re.search(NOTES[name], n) for n in prep.notes), prep.notes
    if shape[0] == 1 and name.startswith("colour"):
        assert "colour converted to grey (luma), as the model expects" in prep.notes
    if shape[0] == 3 and name == "grey.png":
        assert "grey copied to 3 channels, as the model expects colour" in prep.notes
        np.testing.assert_array_equal(prep.x[0], prep.x[2])


@pytest.mark.parametrize("name", sorted(bad_cases()))
def test_unreadable_uploads_get_their_own_message(name):
    data, msg = bad_cases()[name]
    start = time.perf_counter()
    with pytest.raises(DatasetError, match=msg) as info:
        prepare_upload(data, (1, 8, 8), name=name)
    assert str(info.value).startswith(name)  # the message names the file
    assert time.perf_counter() - start < 1.0  # bombs are refused from the header


def test_exif_rotation_matches_the_manually_rotated_image():
    upright = gradient().transpose(Image.Transpose.ROTATE_270)  # what orientation 6 means
    a = prepare_upload(exif_jpeg(6), (3, 16, 16)).x
    b = prepare_upload(encode(upright, "JPEG", quality=95), (3, 16, 16)).x
    rotated = prepare_upload(exif_jpeg(6), (3, 16, 16))
    assert rotated.source_size == (30, 40)  # width, height, upright
    assert rotated.format == "JPEG"
    assert prepare_upload(good_cases()["colour.bmp"], (1, 8, 8)).format == "BMP"
    assert np.abs(a - b).mean() < 0.02


def test_sixteen_bit_keeps_its_levels_and_animation_is_first_frame():
    x = prepare_upload(good_cases()["sixteen_bit.png"], (1, 32, 32)).x
    assert np.unique(np.round(x[0, 0] * 255)).size >= 30  # not clipped to 255
    assert x[0, 0, -1] > 0.95
    assert x[0, 0, 0] < 0.05
    first = prepare_upload(good_cases()["animated.png"], (1, 16, 16)).x
    np.testing.assert_allclose(first, 30 / 255, atol=1e-6)  # frame 1 is the 30-grey frame


def test_upload_size_is_checked_in_python():
    with pytest.raises(DatasetError, match=r"too large: 0\.0 MB; lsx reads images of at most 0 MB"):
        prepare_upload(encode(gradient()), (1, 8, 8), max_bytes=10)


def test_default_decoding_still_refuses_bmp_and_animations():
    with pytest.raises(DatasetError, match=r"is a BMP file; lsx reads PNG, JPEG and WebP only"):
        decode_image(good_cases()["colour.bmp"])
    with pytest.raises(DatasetError, match=r"is an animated PNG"):
        decode_image(good_cases()["animated.png"])


def test_vocabulary_files(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"striped": "stripes"}))
    assert read_vocabulary(path) == {"striped": "stripes"}
    path.write_text(json.dumps(["striped"]))
    with pytest.raises(DatasetError, match=r"must be a JSON object of phrase -> class name"):
        read_vocabulary(path)
    path.write_text("{oops")
    with pytest.raises(DatasetError, match=r"Cannot read the vocabulary file"):
        read_vocabulary(path)
    synonyms, source = vocabulary_for(tmp_path, "textures")
    assert source == "built-in (textures)"
    assert synonyms["striped"] == "stripes"
    (tmp_path / VOCABULARY_NAME).write_text(json.dumps({"lined": "stripes"}))
    assert vocabulary_for(tmp_path, "textures") == (
        {"lined": "stripes"},
        "run folder (vocabulary.json)",
    )
    assert vocabulary_for(tmp_path / "nope", "folder:/x") == ({}, "none")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("drawing.svg", "has the type SVG (.svg)"),
        ("anim.GIF", "has the type GIF (.gif)"),
        ("scan.tif", "has the type TIFF (.tif)"),
        ("x.png\0.exe", "has the type EXE (.exe)"),
        ("README", "has no file extension"),
        (".png", "has no file extension"),
    ],
)
def test_other_file_types_are_named_with_the_supported_ones(name, why):
    from lsx.data.uploads import type_error

    msg = type_error(name)
    assert msg.startswith(f"{name.replace(chr(0), chr(92) + '0')} {why}; ")
    assert "PNG, JPEG, WebP and BMP images (.png, .jpg, .jpeg, .webp, .bmp)" in msg


@pytest.mark.parametrize("name", ["a.png", "b.PNG", "c.jpg", "d.JPEG", "e.webp", "f.bmp"])
def test_supported_file_types_pass(name):
    from lsx.data.uploads import type_error

    assert type_error(name) is None


def test_decode_cost_reads_the_header_and_counts_jpegs_at_their_draft_scale():
    from lsx.data.uploads import decode_cost

    png = encode(Image.new("L", (4000, 3000), 7))
    assert decode_cost(png, (1, 8, 8)) == 12_000_000
    jpeg = encode(Image.new("RGB", (4000, 3000), (7, 8, 9)), "JPEG")
    assert decode_cost(jpeg, (3, 32, 32)) == 500 * 375  # decoded at 1/8 scale
    assert decode_cost(b"not an image", (1, 8, 8)) == 0  # refused before decoding
    assert decode_cost(b"", (1, 8, 8)) == 0


def test_pixels_spent_counts_the_last_minute_only():
    from lsx.data.uploads import DECODE_WINDOW_S, pixels_spent

    log = [(0.0, 5), (30.0, 7), (100.0, 11)]
    assert pixels_spent(log, 100.0) == 11
    assert pixels_spent(log, 30.0 + DECODE_WINDOW_S - 1) == 7 + 11
    assert pixels_spent([], 0.0) == 0
