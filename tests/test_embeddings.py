"""Embedding sets (lsx.embeddings, `lsx import-embeddings`): latents made elsewhere, imported from
.npy or Parquet, stored as a latent store beside the runs, listed, and refused with a clear
message when the input is bad."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsx.checkpoint import list_runs, save_checkpoint
from lsx.embeddings import (
    UNLABELLED,
    import_embeddings,
    is_embedding_set,
    list_embedding_sets,
    load_embedding_set,
)
from lsx.errors import ConfigError, DatasetError, DataShapeError
from lsx.latents.store import open_store
from lsx.models import build_model, make_config
from lsx.paths import DATA_ROOTS_ENV

REPO = Path(__file__).parents[1]


def clip_like(
    path: Path, n: int = 240, d: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A Parquet file of CLIP-like vectors: vector column, label column, caption, source."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)).astype(np.float32)
    labels = np.array(["cat", "dog", "bird"])[rng.integers(0, 3, n)]
    table = pa.table(
        {
            "embedding": pa.array(list(z), type=pa.list_(pa.float32())),
            "label": labels,
            "caption": [f"photo {i}" for i in range(n)],
            "source": np.array(["web", "camera"])[rng.integers(0, 2, n)],
        }
    )
    pq.write_table(table, path)
    return z, labels


def test_parquet_import_round_trips_vectors_labels_and_metadata(tmp_path):
    z, labels = clip_like(tmp_path / "clip.parquet")
    folder = import_embeddings(
        tmp_path / "runs", "clip", tmp_path / "clip.parquet", label_column="label"
    )
    emb = load_embedding_set(folder)
    np.testing.assert_array_equal(np.asarray(emb.z), z)
    assert emb.store.primary == "label"  # the label column is the primary colour
    names = emb.label_names["label"]
    assert names == ("bird", "cat", "dog")
    np.testing.assert_array_equal(np.asarray(names)[np.asarray(emb.labels["label"])], labels)
    assert "source" in emb.label_names  # few distinct values: a colour
    assert "caption" not in emb.label_names  # one value per row: metadata only
    meta = emb.metadata()
    assert list(meta.columns) == ["caption", "source"]
    assert meta["caption"][7] == "photo 7"
    assert emb.images is None
    assert np.isnan(np.asarray(emb.store.recon_error)).all()  # no decoder, no error
    assert open_store(emb.store.path).n == 240  # an ordinary complete latent store


def test_npy_import_with_string_labels_and_text_labels(tmp_path):
    z = np.random.default_rng(1).normal(size=(50, 4))
    np.save(tmp_path / "z.npy", z)
    names = np.array(["a", "b"] * 25)
    np.save(tmp_path / "y.npy", names)
    (tmp_path / "y.txt").write_text("\n".join(names) + "\n")
    for i, labels in enumerate((tmp_path / "y.npy", tmp_path / "y.txt")):
        emb = load_embedding_set(
            import_embeddings(tmp_path, f"s{i}", tmp_path / "z.npy", labels=labels)
        )
        np.testing.assert_allclose(np.asarray(emb.z), z.astype(np.float32))
        assert emb.label_names["label"] == ("a", "b")
        np.testing.assert_array_equal(np.asarray(emb.labels["label"])[:4], [0, 1, 0, 1])
    plain = load_embedding_set(import_embeddings(tmp_path, "plain", z))
    assert plain.label_names == {"label": (UNLABELLED,)}


def test_images_from_a_built_in_dataset_bring_its_labels(tmp_path):
    z = np.random.default_rng(2).normal(size=(1797, 8)).astype(np.float32)
    emb = load_embedding_set(import_embeddings(tmp_path, "dig", z, images="digits"))
    assert emb.images == "digits"
    assert emb.store.primary == "digit"
    assert len(emb.label_names["digit"]) == 10


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda d: _nan(d), DataShapeError, "NaN or infinite values (first at row 3)"),
        (
            lambda d: _ragged(d),
            DataShapeError,
            "(row 0 has 4 numbers, row 2 has 3)",
        ),
        (lambda d: _pickled(d), DatasetError, "pickled data"),
        (lambda d: _empty(d), DatasetError, "not a readable .npy"),
        (lambda d: _one_row(d), DataShapeError, "import at least 2"),
        (lambda d: _text(d), ConfigError, ".npy or .parquet"),
    ],
)
def test_bad_vectors_are_refused_with_what_was_wrong(tmp_path, make, error, words):
    path = make(tmp_path)
    with pytest.raises(error, match=None) as got:
        import_embeddings(tmp_path / "runs", "bad", path)
    assert words in str(got.value)
    assert not (tmp_path / "runs" / "bad").exists()  # nothing half-written
    assert not list(tmp_path.glob("runs/.bad*"))


def _nan(d: Path) -> Path:
    z = np.ones((10, 3))
    z[3, 1] = np.nan
    np.save(d / "nan.npy", z)
    return d / "nan.npy"


def _ragged(d: Path) -> Path:
    pq.write_table(pa.table({"v": [[1.0, 2, 3, 4], [1.0, 2, 3, 4], [1.0, 2, 3]]}), d / "r.parquet")
    return d / "r.parquet"


def _pickled(d: Path) -> Path:
    np.save(d / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return d / "obj.npy"


def _empty(d: Path) -> Path:
    (d / "empty.npy").write_bytes(b"")
    return d / "empty.npy"


def _one_row(d: Path) -> Path:
    np.save(d / "one.npy", np.ones((1, 3)))
    return d / "one.npy"


def _text(d: Path) -> Path:
    (d / "z.csv").write_text("1,2\n")
    return d / "z.csv"


def test_labels_of_the_wrong_length_are_refused(tmp_path):
    np.save(tmp_path / "y.npy", np.arange(9))
    with pytest.raises(DataShapeError, match="labels have 9 rows but there are 10 vectors"):
        import_embeddings(tmp_path / "runs", "s", np.ones((10, 2)), labels=tmp_path / "y.npy")


def test_images_outside_the_data_roots_are_refused(tmp_path, monkeypatch):
    roots, elsewhere = tmp_path / "data", tmp_path / "private"
    roots.mkdir()
    elsewhere.mkdir()
    np.save(elsewhere / "x.npy", np.zeros((10, 8, 8), dtype=np.uint8))
    monkeypatch.setenv(DATA_ROOTS_ENV, str(roots))
    for spec in (
        f"npy:{elsewhere / 'x.npy'}",
        f"npy:{roots}/../private/x.npy",
        f"npy:{elsewhere}/none.npy",
    ):
        with pytest.raises(ConfigError, match="data folders") as got:
            import_embeddings(tmp_path / "runs", "s", np.ones((10, 2)), images=spec)
        assert "exist" not in str(got.value)  # the same words whether or not the file exists
    np.save(roots / "x.npy", np.zeros((10, 8, 8), dtype=np.uint8))
    inside = f"npy:{roots / 'x.npy'}"
    emb = load_embedding_set(
        import_embeddings(tmp_path / "runs", "s", np.ones((10, 2)), images=inside)
    )
    assert emb.images.endswith("x.npy")
    with pytest.raises(DataShapeError, match="hold 10 rows but there are 11 vectors"):
        import_embeddings(tmp_path / "runs", "t", np.ones((11, 2)), images=inside)


def test_names_runs_and_overwrite(tmp_path):
    root = tmp_path / "runs"
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=2)
    save_checkpoint(build_model(config), config, root / "run")
    with pytest.raises(ConfigError, match="a run or another folder"):
        import_embeddings(root, "run", np.ones((5, 2)))
    with pytest.raises(ConfigError, match="name must be"):
        import_embeddings(root, "../up", np.ones((5, 2)))
    import_embeddings(root, "set", np.ones((5, 2)))
    with pytest.raises(ConfigError, match="--overwrite"):
        import_embeddings(root, "set", np.zeros((5, 2)))
    import_embeddings(root, "set", np.arange(10.0).reshape(5, 2), overwrite=True)
    assert load_embedding_set(root / "set").z[4, 1] == 9
    runs, skipped = list_runs(root)
    assert [r.name for r in runs] == ["run"]
    assert skipped == []  # a set is not a skipped run
    sets, bad = list_embedding_sets(root)
    assert [s.name for s in sets] == ["set"]
    assert bad == []
    assert is_embedding_set(root / "set")
    assert not is_embedding_set(root / "run")


def test_a_broken_set_is_listed_as_skipped_with_its_reason(tmp_path):
    import_embeddings(tmp_path, "ok", np.ones((5, 2)))
    import_embeddings(tmp_path, "broken", np.ones((5, 2)))
    (tmp_path / "broken" / "stores" / "embeddings" / "z.npy").write_bytes(b"garbage")
    sets, bad = list_embedding_sets(tmp_path)
    assert [s.name for s in sets] == ["ok"]
    assert bad[0][0] == "broken"
    assert "z.npy" in bad[0][1]
    assert "--overwrite" in bad[0][1]


def test_cli_imports_and_lists_a_set(tmp_path):
    clip_like(tmp_path / "clip.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lsx", "import-embeddings", "--latents",
           str(tmp_path / "clip.parquet"), "--label-column", "label", "--name", "clip",
           "--out", str(tmp_path / "runs")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "240 vectors of dimension 32" in out.stdout
    assert "label (3 classes)" in out.stdout
    listed = subprocess.run([sys.executable, "-m", "lsx", "runs", "--out", str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert "clip" in listed.stdout
    assert "240 x 32 (no model)" in listed.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2
    assert "--overwrite" in again.stderr
