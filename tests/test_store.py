"""lsx.cache: miss then hit, manifests, stale detection, atomic writes, read-only folders."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import lsx.cache as store
from lsx.analysis import embed, project
from lsx.cache import (
    cached_embedding,
    cached_projection,
    clear_stale,
    default_cache_dir,
    library_versions,
    stale_entries,
)
from lsx.checkpoint import load_checkpoint, save_checkpoint, weights_sha256
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, make_config

SHA, DATA = "a" * 16, "d" * 16


@pytest.fixture
def model():
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    return build_model(config).eval().requires_grad_(False)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)


@pytest.fixture
def z() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "run" / "cache"


@pytest.fixture
def counted(monkeypatch):
    """Count the calls that reach the real embed / project functions."""
    calls = {"embed": 0, "project": 0}

    def counting_embed(*args, **kwargs):
        calls["embed"] += 1
        return embed(*args, **kwargs)

    def counting_project(*args, **kwargs):
        calls["project"] += 1
        return project(*args, **kwargs)

    monkeypatch.setattr(store, "embed", counting_embed)
    monkeypatch.setattr(store, "project", counting_project)
    return calls


def _proj(cache: Path, z: np.ndarray, **changes):
    kwargs = {"z": z, "checkpoint_sha": SHA, "data_hash": DATA, "split": "test", "method": "pca"}
    return cached_projection(cache, **{**kwargs, **changes})


def _emb(cache: Path, model, x: np.ndarray, **changes):
    kwargs = {"model": model, "checkpoint_sha": SHA, "data_hash": DATA, "split": "test", "x": x}
    return cached_embedding(cache, **{**kwargs, **changes})


def _only(cache: Path, suffix: str) -> Path:
    (path,) = cache.glob(f"*{suffix}")
    return path


# ------------------------------------------------------------------------------ miss, then hit


def test_embedding_miss_then_hit(cache, model, x, counted):
    emb, manifest, hit = _emb(cache, model, x)
    assert not hit
    assert manifest["cached"]
    assert counted["embed"] == 1
    assert len(list(cache.glob("embedding-*.npz"))) == len(list(cache.glob("*.json"))) == 1
    emb2, manifest2, hit2 = _emb(cache, model, x, batch_size=5)  # batch size is not in the key
    assert hit2
    assert counted["embed"] == 1
    np.testing.assert_array_equal(emb2.z, emb.z)
    np.testing.assert_array_equal(emb2.recon_error, emb.recon_error)
    assert emb2.z.dtype == np.float32
    assert manifest2["key"] == manifest["key"]


def test_projection_miss_then_hit(cache, z, counted):
    coords, manifest, hit = _proj(cache, z)
    assert not hit
    assert counted["project"] == 1
    np.testing.assert_array_equal(coords, project(z, "pca"))
    coords2, _, hit2 = _proj(cache, z)
    assert hit2
    assert counted["project"] == 1
    np.testing.assert_array_equal(coords2, coords)
    assert coords2.dtype == np.float32
    # explicit defaults are the same request as no params
    assert _proj(cache, z, params={"whiten": False})[2]


@pytest.mark.parametrize(
    "change",
    [
        {"n_components": 3},
        {"seed": 1},
        {"seed": None},
        {"params": {"whiten": True}},
        {"split": "train"},
        {"method": "tsne", "params": {"max_iter": 250}},
    ],
)
def test_another_request_is_another_entry(cache, z, counted, change):
    _proj(cache, z)
    coords, manifest, hit = _proj(cache, z, **change)
    assert not hit
    assert "recomputed_because" not in manifest  # a new request, not a stale one
    assert counted["project"] == 2
    assert len(list(cache.glob("*.npy"))) == 2


def test_another_selection_of_points_is_another_entry(cache, z):
    _proj(cache, z)
    assert not _proj(cache, z[:20])[2]
    z2 = z.copy()
    z2[0, 0] += 1.0  # same shape, other values: z is part of the key
    assert not _proj(cache, z2)[2]


def test_manifest_records_the_request(cache, z):
    _, manifest, _ = _proj(cache, z, method="pca", n_components=3, seed=7)
    for field, value in {
        "kind": "projection",
        "checkpoint_sha": SHA,
        "data_hash": DATA,
        "split": "test",
        "method": "pca",
        "n_components": 3,
        "seed": 7,
        "params": {"whiten": False},
        "n_points": 30,
    }.items():
        assert manifest[field] == value, field
    assert set(manifest["versions"]) == {"lsx", "numpy", "torch", "scikit-learn", "umap-learn"}
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["compute_seconds"] >= 0
    assert manifest["created"].endswith("+00:00")
    on_disk = json.loads(_only(cache, ".json").read_text())
    assert on_disk == {k: v for k, v in manifest.items() if k != "cached"}
    assert (
        _only(cache, ".json").stem == _only(cache, ".npy").stem == f"projection-{manifest['key']}"
    )


# ------------------------------------------------------------------------------ stale entries


def test_new_checkpoint_is_detected_and_reported(cache, z, counted):
    _proj(cache, z)
    z_new = z + 0.5  # the retrained model encodes differently
    coords, manifest, hit = _proj(cache, z_new, checkpoint_sha="b" * 16)
    assert not hit
    assert counted["project"] == 2
    assert f"checkpoint_sha '{SHA}' (now '{'b' * 16}')" in manifest["recomputed_because"]
    old = stale_entries(cache, "b" * 16, DATA)
    assert len(old) == 2
    assert all(SHA not in p.name for p in old)  # file names are keys, the manifests tell
    assert clear_stale(cache, "b" * 16, DATA) == old
    assert stale_entries(cache, "b" * 16, DATA) == []
    assert _proj(cache, z_new, checkpoint_sha="b" * 16)[2]  # the current entry survives


def test_new_dataset_is_detected(cache, model, x, counted):
    _emb(cache, model, x)
    _, manifest, hit = _emb(cache, model, x, data_hash="e" * 16)
    assert not hit
    assert "data_hash" in manifest["recomputed_because"]
    assert counted["embed"] == 2
    assert {p.suffix for p in stale_entries(cache, SHA, "e" * 16)} == {".json", ".npz"}


def test_library_upgrade_is_detected(cache, z, monkeypatch):
    _proj(cache, z)
    upgraded = {**library_versions(), "torch": "9.9.9"}
    monkeypatch.setattr(store, "library_versions", lambda: upgraded)
    _, manifest, hit = _proj(cache, z)
    assert not hit
    assert "torch" in manifest["recomputed_because"]
    assert "(now 9.9.9)" in manifest["recomputed_because"]
    assert len(stale_entries(cache, SHA, DATA)) == 2


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
            "corrupt or truncated",
        ),
        (lambda p: p.write_bytes(b"not an array"), "corrupt or truncated"),
        (lambda p: p.unlink(), "missing or unreadable"),
    ],
)
def test_damaged_array_is_recomputed_not_served(cache, z, counted, damage, reason):
    coords, _, _ = _proj(cache, z)
    damage(_only(cache, ".npy"))
    coords2, manifest, hit = _proj(cache, z)
    assert not hit
    assert reason in manifest["recomputed_because"]
    np.testing.assert_array_equal(coords2, coords)
    assert counted["project"] == 2
    assert _proj(cache, z)[2]  # overwritten with a good entry


def test_damaged_embedding_archive_is_recomputed(cache, model, x):
    _emb(cache, model, x)
    path = _only(cache, ".npz")
    path.write_bytes(path.read_bytes()[:-40])
    _, manifest, hit = _emb(cache, model, x)
    assert not hit
    assert "corrupt or truncated" in manifest["recomputed_because"]


def test_array_of_the_wrong_shape_is_stale_even_with_a_matching_sha(cache, z):
    _proj(cache, z)
    npy, manifest_path = _only(cache, ".npy"), _only(cache, ".json")
    np.save(npy, np.zeros((30, 3), dtype=np.float32))  # a valid file of another shape
    manifest = json.loads(manifest_path.read_text())
    manifest["array_sha256"] = store._sha256(npy.read_bytes())
    manifest_path.write_text(json.dumps(manifest))
    _, out, hit = _proj(cache, z)
    assert not hit
    assert "expected float32 (30, 2)" in out["recomputed_because"]


def test_pickled_array_is_never_loaded(cache, z):
    _proj(cache, z)
    npy, manifest_path = _only(cache, ".npy"), _only(cache, ".json")
    np.save(npy, np.array([{"evil": 1}] * 30, dtype=object), allow_pickle=True)
    manifest = json.loads(manifest_path.read_text())
    manifest["array_sha256"] = store._sha256(npy.read_bytes())  # the sha matches
    manifest_path.write_text(json.dumps(manifest))
    coords, out, hit = _proj(cache, z)
    assert not hit
    assert "cannot be parsed" in out["recomputed_because"]
    assert coords.dtype == np.float32


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda m: m.update(split="train"), "differs: split 'train' (now 'test')"),
        (lambda m: m.pop("checkpoint_sha"), "differs: checkpoint_sha None"),
        (lambda m: m["versions"].update(numpy="0.0"), "numpy 0.0 (now"),
    ],
)
def test_edited_manifest_is_stale(cache, z, edit, reason):
    _proj(cache, z)
    path = _only(cache, ".json")
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    _, out, hit = _proj(cache, z)
    assert not hit
    assert reason in out["recomputed_because"]


def test_unreadable_or_missing_manifest_is_stale(cache, z):
    _proj(cache, z)
    _only(cache, ".json").write_text("{not json")
    _, out, hit = _proj(cache, z)
    assert not hit
    assert "unreadable" in out["recomputed_because"]
    assert stale_entries(cache, SHA, DATA) == []  # overwritten
    _only(cache, ".json").unlink()
    _, out, hit = _proj(cache, z)
    assert not hit
    assert "is missing" in out["recomputed_because"]


def test_stale_entries_rules(cache, z):
    assert stale_entries(cache, SHA, DATA) == []  # no folder yet
    _proj(cache, z)
    (cache / "README.txt").write_text("not ours")
    orphan = cache / "projection-orphan.npy"
    np.save(orphan, np.zeros(3, dtype=np.float32))
    fresh_tmp, old_tmp = cache / ".tmp-fresh.npy", cache / ".tmp-old.npy"
    fresh_tmp.write_bytes(b"x")
    old_tmp.write_bytes(b"x")
    long_ago = time.time() - 2 * store.TMP_MAX_AGE_S
    os.utime(old_tmp, (long_ago, long_ago))
    bad_json = cache / "projection-bad.json"
    bad_json.write_text("[1, 2]")
    assert stale_entries(cache, SHA, DATA) == sorted([orphan, old_tmp, bad_json])
    clear_stale(cache, SHA, DATA)
    assert {p.name for p in cache.iterdir()} >= {"README.txt", ".tmp-fresh.npy"}
    assert _proj(cache, z)[2]


# ------------------------------------------------------------------------------ writes


def test_writes_leave_no_temporary_files(cache, model, x, z):
    _emb(cache, model, x)
    _proj(cache, z)
    _proj(cache, z, n_components=3)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json"] * 3 + [".npy"] * 2 + [".npz"]
    assert not list(cache.glob(".tmp-*"))


def test_interrupted_write_is_never_served(cache, z, monkeypatch):
    def interrupted(path, obj):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(store, "atomic_write_json", interrupted)  # dies after the array, before manifest
        with pytest.raises(KeyboardInterrupt):
            _proj(cache, z)
    assert not list(cache.glob(".tmp-*"))
    _, manifest, hit = _proj(cache, z)
    assert not hit
    assert "is missing" in manifest["recomputed_because"]
    assert _proj(cache, z)[2]


def test_unwritable_cache_computes_without_caching(cache, model, x, z, monkeypatch):
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(store, "atomic_write_bytes", refuse)
    emb, manifest, hit = _emb(cache, model, x)
    assert not hit
    assert emb.z.shape == (12, 3)
    assert manifest["cached"] is False
    assert "PermissionError" in manifest["not_cached_because"]
    coords, manifest, hit = _proj(cache, z)
    assert coords.shape == (30, 2)
    assert manifest["cached"] is False
    assert not list(cache.glob("*.np*"))


def test_cache_folder_under_a_file_computes_without_caching(tmp_path, z):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    coords, manifest, hit = _proj(blocker / "cache", z)
    assert coords.shape == (30, 2)
    assert not hit
    assert manifest["cached"] is False


def test_unwritable_folder_still_serves_hits(cache, z, monkeypatch):
    _proj(cache, z)

    def refuse(path, data):  # what a read-only folder does (tests run as root, so chmod can't)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(store, "atomic_write_bytes", refuse)
    assert _proj(cache, z)[2]
    _, manifest, hit = _proj(cache, z, seed=5)
    assert not hit
    assert manifest["cached"] is False


# ------------------------------------------------------------------------------ errors


def test_bad_requests_fail_before_anything_is_written(cache, z):
    with pytest.raises(ConfigError, match="known methods: pca, tsne, umap"):
        _proj(cache, z, method="mds")
    with pytest.raises(ConfigError, match="must be JSON values"):
        _proj(cache, z, method="tsne", params={"metric": lambda a, b: 0.0})
    with pytest.raises(ConfigError, match="n_components must be 2 or 3"):
        _proj(cache, z, n_components=4)
    with pytest.raises(DataShapeError, match="at least 3 points"):
        _proj(cache, z[:2])
    assert not cache.exists()


def test_wrong_images_never_hit_a_cached_embedding(cache, model, x):
    _emb(cache, model, x)
    with pytest.raises(DataShapeError, match=r"expects images of shape \(n, 1, 8, 8\)"):
        _emb(cache, model, np.zeros((12, 1, 4, 16), dtype=np.float32))  # same n, other shape


# ------------------------------------------------------------------------------ end to end


def test_run_dir_round_trip(tmp_path, tiny_dataset):
    config = make_config("ae", input_shape=(1, 8, 8), latent_dim=2, hidden_dim=16)
    run_dir = tmp_path / "ae-run"
    save_checkpoint(build_model(config), config, run_dir)
    model, _ = load_checkpoint(run_dir)
    sha, x = weights_sha256(run_dir), tiny_dataset.x_test
    cache = default_cache_dir(run_dir)
    assert cache == run_dir / "cache"
    common = {"data_hash": tiny_dataset.content_hash, "split": "test"}
    emb, _, _ = cached_embedding(cache, model=model, checkpoint_sha=sha, x=x, **common)
    _, manifest, hit = cached_projection(
        cache, z=emb.z, checkpoint_sha=sha, method="pca", n_components=3, **common
    )
    assert not hit
    assert manifest["n_points"] == 16
    # "retrain": new weights, new sha, stale entries reported and cleared
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    save_checkpoint(model, config, run_dir)
    new_sha = weights_sha256(run_dir)
    assert new_sha != sha
    _, manifest, hit = cached_embedding(cache, model=model, checkpoint_sha=new_sha, x=x, **common)
    assert not hit
    assert "checkpoint_sha" in manifest["recomputed_because"]
    assert len(clear_stale(cache, new_sha, tiny_dataset.content_hash)) == 4


def test_compute_false_only_looks(cache, z, monkeypatch):
    calls = []
    monkeypatch.setattr(
        store, "project", lambda *a, **k: calls.append(1) or np.zeros((30, 2), np.float32)
    )
    coords, manifest, hit = _proj(cache, z, compute=False)
    assert coords is None
    assert not hit
    assert manifest["cached"] is False
    assert not calls
    assert not cache.exists() or not list(cache.glob("*.np*"))
    _proj(cache, z)
    assert calls == [1]
    coords, _, hit = _proj(cache, z, compute=False)
    assert hit
    assert coords.shape == (30, 2)
