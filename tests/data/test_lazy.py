"""Lazy image sources: npy:PATH (memory-mapped), folder:PATH (decoded on read), built-ins."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from lsx.data import load_dataset
from lsx.data.lazy import (
    NPY_TEST_MAX,
    RANGE_CHECK_ROWS,
    DatasetSource,
    FolderSource,
    NpySource,
    open_source,
    torch_dataset,
)
from lsx.errors import ConfigError, DatasetError, DataShapeError
from tests.waiting import within


def _u8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ------------------------------------------------------------------------------ npy


def test_npy_uint8_grey_is_scaled_and_memory_mapped(tmp_path):
    x = _u8((50, 6, 5))
    np.save(tmp_path / "a.npy", x)
    src = open_source(f"npy:{tmp_path / 'a.npy'}")
    assert isinstance(src, NpySource)
    assert src.input_shape == (1, 6, 5)
    assert len(src) == 50
    idx = np.array([7, 3, 49, 3])
    out = src.read(idx)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], x[idx].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(src.read(slice(10, 20)), src.read(np.arange(10, 20)))
    assert isinstance(src._x, np.memmap)  # paged in on demand, never loaded whole
    assert src.label_names == {"class": ("all",)}
    assert src.y.tolist() == [0] * 50
    assert src.describe()["kind"] == "npy"


def test_npy_float32_rgb_with_labels_file(tmp_path):
    x = np.random.default_rng(1).random((40, 3, 4, 4)).astype(np.float32)
    y = np.where(np.arange(40) % 2, 7, 3)
    np.save(tmp_path / "b.npy", x)
    np.save(tmp_path / "b.labels.npy", y)
    src = open_source(f"npy:{tmp_path / 'b.npy'}")
    assert src.input_shape == (3, 4, 4)
    np.testing.assert_array_equal(src.read(np.arange(40)), x)
    assert src.label_names == {"class": ("3", "7")}
    np.testing.assert_array_equal(src.y, (y == 7).astype(np.int64))
    assert any("b.labels.npy" in note for note in src.notes)


def test_npy_split_is_fixed_disjoint_and_capped(tmp_path):
    np.save(tmp_path / "s.npy", _u8((1000, 2, 2)))
    src = open_source(f"npy:{tmp_path / 's.npy'}")
    test, train = src.split_indices("test"), src.split_indices("train")
    assert len(test) == 100  # 10 %
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    assert np.all(np.diff(test) > 0)
    again = open_source(f"npy:{tmp_path / 's.npy'}")
    np.testing.assert_array_equal(again.split_indices("test"), test)
    np.save(tmp_path / "big.npy", np.zeros((150_000, 1, 1), dtype=np.uint8))
    assert len(open_source(f"npy:{tmp_path / 'big.npy'}").split_indices("test")) == NPY_TEST_MAX


def test_npy_content_hash_is_stable_and_follows_the_file(tmp_path):
    path = tmp_path / "h.npy"
    np.save(path, _u8((20, 3, 3)))
    first = open_source(f"npy:{path}").content_hash
    assert open_source(f"npy:{path}").content_hash == first
    np.save(path, _u8((20, 3, 3), seed=5))
    assert open_source(f"npy:{path}").content_hash != first


@pytest.mark.parametrize(
    ("array", "error", "words"),
    [
        (np.zeros((10, 4, 4), dtype=np.int16), DataShapeError, "uint8 (0..255) or float32"),
        (np.zeros((10, 4, 4), dtype=np.float64), DataShapeError, "x.astype(np.float32)"),
        (np.zeros((10, 4, 4, 3), dtype=np.uint8), DataShapeError, "channels-last"),
        (np.zeros((10, 2, 4, 4), dtype=np.uint8), DataShapeError, "C = 1 or 3"),
        (np.zeros((10, 16), dtype=np.uint8), DataShapeError, "(n, H, W)"),
        (np.zeros((1, 4, 4), dtype=np.uint8), DataShapeError, "at least 2"),
        (np.full((10, 4, 4), 2.0, dtype=np.float32), DataShapeError, "[0, 1]"),
    ],
)
def test_npy_bad_arrays_are_refused_with_advice(tmp_path, array, error, words):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(error, match=None) as info:
        open_source(f"npy:{tmp_path / 'bad.npy'}")
    assert words in str(info.value)


def test_npy_out_of_range_rows_beyond_the_open_check_fail_on_read(tmp_path):
    n = 2 * RANGE_CHECK_ROWS + 100
    x = np.zeros((n, 2, 2), dtype=np.float32)
    x[RANGE_CHECK_ROWS + 50] = np.nan  # not in the rows checked when opened
    np.save(tmp_path / "r.npy", x)
    src = open_source(f"npy:{tmp_path / 'r.npy'}")
    src.read(np.arange(10))
    with pytest.raises(DataShapeError, match=f"row {RANGE_CHECK_ROWS + 50} "):
        src.read(np.arange(RANGE_CHECK_ROWS, RANGE_CHECK_ROWS + 100))


def test_npy_pickled_and_missing_files_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="never unpickles"):
        open_source(f"npy:{tmp_path / 'obj.npy'}")
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(f"npy:{tmp_path / 'nope.npy'}")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DatasetError, match=r"not a \.npy file"):
        open_source(f"npy:{tmp_path / 'junk.npy'}")
    with open(tmp_path / "arch.npy", "wb") as fh:
        np.savez(fh, x=np.zeros(3))  # a file object: savez keeps the name
    with pytest.raises(DatasetError, match="npz archive"):
        open_source(f"npy:{tmp_path / 'arch.npy'}")
    np.save(tmp_path / "ok.npy", _u8((5, 2, 2)))
    np.save(tmp_path / "ok.labels.npy", np.arange(4))
    with pytest.raises(DatasetError, match=r"shape \(5,\)"):
        open_source(f"npy:{tmp_path / 'ok.npy'}")
    with pytest.raises(ConfigError, match="names no path"):
        open_source("npy:")


def test_npy_image_size_resizes_on_read(tmp_path):
    np.save(tmp_path / "z.npy", _u8((6, 8, 8)))
    src = open_source(f"npy:{tmp_path / 'z.npy'}", image_size=4)
    assert src.input_shape == (1, 4, 4)
    assert src.read(np.arange(6)).shape == (6, 1, 4, 4)
    assert any("resized from 8x8 to 4x4" in note for note in src.notes)


# ------------------------------------------------------------------------------ built-ins


def test_builtin_dataset_rows_are_train_then_test():
    ds = load_dataset("digits")
    src = open_source("digits")
    assert isinstance(src, DatasetSource)
    n_train = len(ds.x_train)
    np.testing.assert_array_equal(src.split_indices("train"), np.arange(n_train))
    np.testing.assert_array_equal(src.read(src.split_indices("test")), ds.x_test)
    expected = np.stack([ds.x_test[0], ds.x_train[0]])
    np.testing.assert_array_equal(src.read(np.array([n_train, 0])), expected)
    np.testing.assert_array_equal(src.y, np.concatenate([ds.y_train, ds.y_test]))
    assert src.content_hash == ds.content_hash


def test_unknown_spec_lists_the_lazy_forms():
    with pytest.raises(ConfigError, match="npy:PATH") as info:
        open_source("digts")
    assert "did you mean 'digits'" in str(info.value)
    with pytest.raises(ConfigError, match="image_size"):
        open_source("digits", image_size=1)


# ------------------------------------------------------------------------------ folder


def _write_folder(root, n=4):
    """Grey PNG/JPEG/WebP files in two classes, one colour image, a .txt and a hidden file."""
    rng = np.random.default_rng(3)
    for k, name in enumerate(("b_dogs", "a_cats")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            size = (10 + i, 12)
            grey = rng.integers(0, 256, size=size[::-1], dtype=np.uint8)
            fmt = ("png", "jpg", "webp")[i % 3]
            Image.fromarray(grey, mode="L").save(root / name / f"{k}{i}.{fmt}", quality=95)
    colour = rng.integers(0, 256, size=(9, 9, 3), dtype=np.uint8)
    Image.fromarray(colour, mode="RGB").save(root / "a_cats" / "zz.png")
    (root / "a_cats" / "notes.txt").write_text("not an image")
    (root / "b_dogs" / ".DS_Store").write_bytes(b"\0")
    return root


def _rows(x):
    return sorted(row.tobytes() for row in x)


def test_lazy_folder_has_the_eager_loaders_pixels_labels_and_split(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    eager = load_dataset(f"folder:{root}", image_size=16)
    lazy = open_source(f"folder:{root}", image_size=16)
    assert isinstance(lazy, FolderSource)
    assert lazy.input_shape == eager.input_shape == (3, 16, 16)
    assert lazy.label_names == eager.label_names
    assert len(lazy) == len(eager.x_train) + len(eager.x_test) == 9
    assert _rows(lazy.read(lazy.split_indices("test"))) == _rows(eager.x_test)
    assert _rows(lazy.read(lazy.split_indices("train"))) == _rows(eager.x_train)
    by_pixels = {row.tobytes(): y for row, y in zip(eager.x_test, eager.y_test, strict=True)}
    test = lazy.split_indices("test")
    for row, y in zip(lazy.read(test), lazy.y[test], strict=True):
        assert by_pixels[row.tobytes()] == y
    assert any("notes.txt" not in n and "1 file skipped" in n for n in lazy.notes)
    assert any("3 channels" in note for note in lazy.notes)
    assert open_source(f"folder:{root}").input_shape == (3, 32, 32)  # default size


def test_lazy_folder_hash_changes_with_files_and_bad_files_name_themselves(tmp_path):
    root = _write_folder(tmp_path / "imgs")
    before = open_source(f"folder:{root}").content_hash
    (root / "b_dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    src = open_source(f"folder:{root}")
    assert src.content_hash != before
    row = src.files.index("b_dogs/broken.png")
    with pytest.raises(DatasetError, match="broken.png"):
        src.read(np.array([row]))
    src.read(np.array([0]))  # the other rows still read


def test_lazy_folder_errors_like_the_eager_loader(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class subfolders"):
        open_source(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "txt" / "a").mkdir(parents=True)
    (tmp_path / "txt" / "b").mkdir()
    (tmp_path / "txt" / "a" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="at least 2 classes"):
        open_source(f"folder:{tmp_path / 'txt'}")


# ------------------------------------------------------------------------------ torch


def test_torch_dataset_with_two_workers_gives_the_read_batches(tmp_path):
    x = _u8((300, 5, 5))
    np.save(tmp_path / "w.npy", x)
    np.save(tmp_path / "w.labels.npy", np.arange(300) % 4)
    src = open_source(f"npy:{tmp_path / 'w.npy'}")
    src.read(np.arange(3))  # opens the memory map in this process
    clone = pickle.loads(pickle.dumps(src))
    assert clone._x is None  # a worker reopens the file instead of inheriting the map
    rows = src.split_indices("train")
    loader = torch.utils.data.DataLoader(
        torch_dataset(src, rows), batch_size=64, num_workers=2, shuffle=False
    )
    got_x, got_y = zip(*loader, strict=True)
    assert [len(b) for b in got_x] == [64] * (len(rows) // 64) + [len(rows) % 64]
    np.testing.assert_array_equal(torch.cat(got_x).numpy(), src.read(rows))
    np.testing.assert_array_equal(torch.cat(got_y).numpy(), src.y[rows])
    assert torch.cat(got_y).dtype == torch.int64


def test_torch_dataset_items_and_bad_indices():
    src = open_source("digits")
    ds = torch_dataset(src, np.array([5, 1]))
    x, y = ds[1]
    assert x.shape == (1, 8, 8)
    assert int(y) == int(src.y[1])
    with pytest.raises(DataShapeError):
        torch_dataset(src, np.array([len(src)]))


def test_lazy_folder_never_blocks_on_a_file_swapped_for_a_fifo_or_a_device_link(tmp_path):
    # listed as a PNG, then replaced: reading it must fail at once, never block or read forever
    import os

    root = _write_folder(tmp_path / "imgs")
    src = open_source(f"folder:{root}")
    fifo, link = src.files[0], src.files[1]
    os.remove(root / fifo)
    os.mkfifo(root / fifo)
    os.remove(root / link)
    os.symlink("/dev/zero", root / link)
    for row in (0, 1):
        err = within(20, lambda r=row: src.read(np.array([r])))
        assert isinstance(err, DatasetError), err
