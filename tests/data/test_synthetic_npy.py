"""``python -m lsx synth-npy`` / write_pattern_npy: a labelled synthetic npy: set of any size."""

from __future__ import annotations

import numpy as np
import pytest

from lsx.cli import main
from lsx.data import synthetic
from lsx.data.lazy import open_source
from lsx.data.synthetic import write_pattern_npy
from lsx.errors import ConfigError


def test_written_set_opens_as_a_lazy_source_with_its_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "NPY_CHUNK", 700)  # several chunks
    images, labels = write_pattern_npy(tmp_path / "s.npy", 3000, size=12, n_classes=4, seed=3)
    x = np.load(images, allow_pickle=False)
    y = np.load(labels, allow_pickle=False)
    assert x.shape == (3000, 1, 12, 12)
    assert x.dtype == np.uint8
    assert set(np.unique(y)) == {0, 1, 2, 3}
    source = open_source(f"npy:{images}")
    assert len(source) == 3000
    assert source.label_names == {"class": ("0", "1", "2", "3")}
    np.testing.assert_array_equal(source.y, y)
    # classes are learnable: nearest class mean beats chance by far
    flat = x.reshape(len(x), -1).astype(np.float32)
    means = np.stack([flat[y == c].mean(0) for c in range(4)])
    pred = ((flat[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == y).mean() > 0.8
    assert not list(tmp_path.glob(".tmp-*"))  # written under a temporary name, then renamed


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, _ = write_pattern_npy(tmp_path / "a.npy", 500, seed=1)
    b, _ = write_pattern_npy(tmp_path / "b.npy", 500, seed=1)
    c, _ = write_pattern_npy(tmp_path / "c.npy", 500, seed=2)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "big.npy"
    assert main(["synth-npy", "--n", "200", "--out", str(out)]) == 0
    assert f"npy:{out}" in capsys.readouterr().out
    assert main(["synth-npy", "--n", "200", "--out", str(out)]) == 2
    assert "does not overwrite" in capsys.readouterr().err
    assert main(["synth-npy", "--n", "0", "--out", str(tmp_path / "z.npy")]) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must"),
        ({"n": 10, "size": 2}, "size must"),
        ({"n": 10, "n_classes": 1}, "n_classes"),
    ],
)
def test_bad_arguments_say_what_is_allowed(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        write_pattern_npy(tmp_path / "x.npy", **kwargs)
    with pytest.raises(ConfigError, match=".npy"):
        write_pattern_npy(tmp_path / "x.bin", 10)
