"""The folder:PATH loader, on tiny image folders written by PIL into tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lsx.data import load_dataset
from lsx.data.folder import load_folder
from lsx.errors import ConfigError, DatasetError

SUFFIXES = (".png", ".JPG", ".jpeg", ".PNG", ".webp")


def _grey(value: int, size: tuple[int, int] = (12, 12)) -> Image.Image:
    ramp = (np.arange(size[0] * size[1]).reshape(size[1], size[0]) % 7) * 8 + value
    return Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8), mode="L")


def _write_class(root, name: str, n: int, value: int, suffixes=SUFFIXES) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _grey(value + i).save(folder / f"img{i}{suffixes[i % len(suffixes)]}")


def _three_classes(root, n: int = 5):
    for k, name in enumerate(("cats", "birds", "apes")):
        _write_class(root, name, n, value=40 * k + 20)
    return root


def test_happy_path_png_jpeg_webp_three_classes(tmp_path):
    ds = load_folder(_three_classes(tmp_path), image_size=16)
    assert ds.spec == f"folder:{tmp_path.resolve()}"
    assert ds.class_names == ("apes", "birds", "cats")  # sorted subfolder names
    assert ds.input_shape == (1, 16, 16)  # all grey -> 1 channel
    assert len(ds.x_train) + len(ds.x_test) == 15
    assert np.bincount(ds.y_test).tolist() == [1, 1, 1]  # stratified, >= 1 per class
    assert ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    assert any("1 channel (grey)" in note for note in ds.notes)
    assert any("images of 12x12 resized to 16x16" in note for note in ds.notes)
    assert not any("skipped" in note for note in ds.notes)
    again = load_folder(tmp_path, image_size=16)
    assert again.content_hash == ds.content_hash  # fixed split
    np.testing.assert_array_equal(again.y_train, ds.y_train)


def test_load_dataset_folder_spec_default_size_and_cache(tmp_path):
    _three_classes(tmp_path)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.input_shape == (1, 32, 32)
    assert not ds.x_train.flags.writeable
    assert load_dataset(f"folder:{tmp_path}") is ds
    _write_class(tmp_path, "dogs", 3, value=200)  # a new class folder -> reloaded
    assert load_dataset(f"folder:{tmp_path}").class_names == ("apes", "birds", "cats", "dogs")


def test_colour_image_makes_three_channels(tmp_path):
    _three_classes(tmp_path)
    Image.new("RGB", (12, 12), (200, 30, 30)).save(tmp_path / "cats" / "red.png")
    ds = load_folder(tmp_path, image_size=8)
    assert ds.input_shape == (3, 8, 8)
    assert any("3 channels (RGB): 1 of 16 images have colour" in note for note in ds.notes)
    grey_like = Image.new("RGB", (12, 12), (90, 92, 91))  # RGB file without colour
    (tmp_path / "cats" / "red.png").unlink()
    grey_like.save(tmp_path / "cats" / "grey.png")
    assert load_folder(tmp_path, image_size=8).input_shape == (1, 8, 8)


def test_missing_path_and_file_instead_of_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist\. Pass folder:PATH"):
        load_folder(tmp_path / "nope")
    _grey(10).save(tmp_path / "one.png")
    with pytest.raises(DatasetError, match=r"one\.png is not a folder"):
        load_folder(tmp_path / "one.png")


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"has no class subfolders \(it is empty\)"):
        load_folder(tmp_path)
    _grey(10).save(tmp_path / "loose.png")
    with pytest.raises(DatasetError, match=r"no class subfolders \(it holds 1 file directly\)"):
        load_folder(tmp_path)


def test_only_one_class(tmp_path):
    _write_class(tmp_path, "only", 4, value=50)
    (tmp_path / ".hidden").mkdir()  # hidden folders are not classes
    with pytest.raises(DatasetError, match=r"only one class subfolder \('only'\)"):
        load_folder(tmp_path)


def test_non_image_and_corrupt_files_skipped_and_reported(tmp_path):
    _three_classes(tmp_path)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / "noise.png").write_bytes(b"\x00garbage" * 50)
    jpeg = tmp_path / "birds" / "cut.jpg"
    _grey(30, (64, 64)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:200])
    (tmp_path / "apes" / "empty.png").write_bytes(b"")
    (tmp_path / "apes" / "deeper").mkdir()
    (tmp_path / "apes" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: ignored, not reported
    ds = load_folder(tmp_path, image_size=8)
    assert len(ds.x_train) + len(ds.x_test) == 15
    (note,) = [n for n in ds.notes if "files skipped" in n]
    assert note.startswith("4 files skipped: ")
    for name in ("notes.txt", "noise.png", "cut.jpg", "empty.png"):
        assert name in note
    assert "truncated or corrupt" in note
    assert "not an image" in note
    assert "empty" in note
    assert any("1 nested subfolder ignored" in n for n in ds.notes)
    assert ".DS_Store" not in " ".join(ds.notes)


def test_all_corrupt_is_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"not a png")
        (tmp_path / name / "y.txt").write_text("text")
    with pytest.raises(DatasetError, match=r"No readable image in .*all 4 files were skipped"):
        load_folder(tmp_path)


def test_class_without_readable_image(tmp_path):
    _three_classes(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.png").write_bytes(b"broken")
    ds = load_folder(tmp_path, image_size=8)
    assert ds.class_names == ("apes", "birds", "cats")
    assert any("classes with no readable image skipped: empty" in n for n in ds.notes)


def test_one_readable_class_is_refused(tmp_path):
    _write_class(tmp_path, "good", 3, value=10)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"Only one class .* \('good'\); 'bad' had none"):
        load_folder(tmp_path)


def test_mixed_sizes_and_modes_converted_and_noted(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _grey(10, (20, 10)).save(tmp_path / "a" / "l.png")
    Image.new("RGB", (9, 9), (10, 200, 10)).save(tmp_path / "a" / "rgb.png")
    Image.new("RGBA", (16, 16), (0, 0, 255, 0)).save(tmp_path / "a" / "rgba.png")
    Image.new("RGB", (8, 8), (250, 0, 0)).quantize(4).save(tmp_path / "b" / "p.png")
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    Image.fromarray(ramp).save(tmp_path / "b" / "i16.png")
    _grey(90).save(tmp_path / "b" / "l.jpg")
    ds = load_folder(tmp_path, image_size=8)
    assert ds.input_shape == (3, 8, 8)
    notes = " | ".join(ds.notes)
    assert "RGBA composited on white: 1 image" in notes
    assert "P (palette) converted to RGB: 1 image" in notes
    assert "rescaled to 8 bit" in notes
    assert "images of 6 different sizes" in notes
    assert "aspect ratio not kept" in notes
    x = np.concatenate([ds.x_train, ds.x_test])
    assert np.any(np.all(x == 1.0, axis=(1, 2, 3)))  # the transparent image became white
    i16 = x[np.argmax(x[:, 0].std(axis=(1, 2)))]  # the ramp has the widest spread
    assert i16.min() < 0.1
    assert i16.max() > 0.9


def test_single_image_class_goes_to_train(tmp_path):
    _three_classes(tmp_path, n=4)
    _write_class(tmp_path, "rare", 1, value=220)
    ds = load_folder(tmp_path, image_size=8)
    rare = ds.class_names.index("rare")
    assert np.sum(ds.y_train == rare) == 1
    assert np.sum(ds.y_test == rare) == 0
    assert any("single image are in the train split only: rare" in n for n in ds.notes)


def test_every_class_single_image_is_refused(tmp_path):
    _write_class(tmp_path, "a", 1, value=10)
    _write_class(tmp_path, "b", 1, value=90)
    with pytest.raises(DatasetError, match=r"Every class has a single readable image"):
        load_folder(tmp_path)


def test_file_cap(tmp_path):
    _three_classes(tmp_path, n=2)
    with pytest.raises(DatasetError, match=r"more than 5 files .* at most that many"):
        load_folder(tmp_path, max_files=5)


def test_memory_cap(tmp_path, monkeypatch):
    _three_classes(tmp_path, n=2)
    monkeypatch.setattr("lsx.data.folder.MAX_ARRAY_BYTES", 1000)
    with pytest.raises(DatasetError, match=r"would need .* GiB.* smaller image_size"):
        load_folder(tmp_path, image_size=32)


def test_folder_spec_without_path_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'folder:' names no folder; write folder:PATH"):
        load_dataset("folder:")


def test_load_dataset_missing_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")


_LOAD_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a regression fails, not swaps
from lsx.data.folder import load_folder
ds = load_folder(sys.argv[1], image_size=8)
print(len(ds.x_train) + len(ds.x_test))
print("\\n".join(ds.notes))
"""


def test_fifo_dev_zero_and_links_out_of_the_folder_are_skipped_with_a_note(tmp_path):
    """A FIFO named p.png used to block for good, a z.png -> /dev/zero link to read forever."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "data"
    _three_classes(root, n=3)
    os.mkfifo(root / "cats" / "p.png")
    (root / "cats" / "z.png").symlink_to("/dev/zero")
    _grey(90).save(tmp_path / "outside.png")
    (root / "birds" / "out.png").symlink_to(tmp_path / "outside.png")
    (root / "birds" / "in.png").symlink_to(root / "apes" / "img0.png")  # inside: read
    repo = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_SCRIPT, str(root)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:  # unblock a regressed reader, if any is left
        try:
            os.close(os.open(root / "cats" / "p.png", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert done.returncode == 0, done.stderr[-2000:]
    count, notes = done.stdout.split("\n", 1)
    assert int(count) == 10  # 9 images + the link inside the folder
    assert "3 files skipped" in notes
    assert "cats/p.png is a FIFO, not a regular file" in notes
    assert "cats/z.png is a link to /dev/zero, outside the dataset folder" in notes
    assert f"birds/out.png is a link to {tmp_path.resolve() / 'outside.png'}, outside" in notes
