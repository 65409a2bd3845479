"""Latent stores: streamed encoding to memory-mapped .npy files, resume, staleness, corruption."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import tracemalloc

import numpy as np
import pytest
import torch

from lsx.analysis.embedding import embed
from lsx.checkpoint import save_checkpoint, weights_sha256
from lsx.data.lazy import open_source
from lsx.errors import DatasetError, DataShapeError
from lsx.latents import progress, writer
from lsx.latents import store as latentstore
from lsx.latents.store import StaleStoreError, list_stores, open_store, store_dir_for
from lsx.latents.writer import encode_to_store
from lsx.models import build_model, make_config
from lsx.tags import read_tags, save_tag

BATCH = 512


def _model(seed: int = 0, side: int = 8):
    torch.manual_seed(seed)
    config = make_config("ae", input_shape=(1, side, side), latent_dim=4, hidden_dim=16)
    return build_model(config).eval()


def _npy(path, n: int, side: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    np.save(path, rng.integers(0, 256, size=(n, side, side), dtype=np.uint8))
    np.save(str(path).replace(".npy", ".labels.npy"), np.arange(n) % 5)
    return open_source(f"npy:{path}")


@pytest.fixture(scope="module")
def src10k(tmp_path_factory):
    return _npy(tmp_path_factory.mktemp("data") / "x.npy", 10_000)


def _stop_after(batches: int):
    calls = []

    def progress(done: int, n: int) -> None:
        calls.append(done)
        if len(calls) == batches:
            raise KeyboardInterrupt

    return progress, calls


def test_streamed_store_equals_embed_on_the_same_rows(src10k, tmp_path):
    model = _model()
    store = encode_to_store(model, src10k, tmp_path / "s", checkpoint_sha="w1", batch_size=BATCH)
    oracle = embed(model, src10k.read(np.arange(len(src10k))), batch_size=BATCH)
    assert (store.n, store.dim) == (10_000, 4)
    assert isinstance(store.z, np.memmap)
    assert not store.z.flags.writeable  # read-only map
    np.testing.assert_array_equal(store.z, oracle.z)
    np.testing.assert_array_equal(store.recon_error, oracle.recon_error)
    np.testing.assert_array_equal(store.rows, np.arange(10_000))
    np.testing.assert_array_equal(store.y, src10k.y)
    assert store.label_names == src10k.label_names
    m = store.manifest
    assert m["complete"]
    assert m["rows_done"] == 10_000
    assert m["source"]["hash"] == src10k.content_hash
    assert m["rows_per_s"] > 0
    assert store.recomputed_because is None


def test_test_split_store_holds_those_rows(src10k, tmp_path):
    model = _model()
    store = encode_to_store(model, src10k, tmp_path / "t", checkpoint_sha="w", split="test")
    rows = src10k.split_indices("test")
    np.testing.assert_array_equal(store.rows, rows)
    np.testing.assert_array_equal(store.z, embed(model, src10k.read(rows), batch_size=1024).z)
    np.testing.assert_array_equal(store.y, src10k.y[rows])


def test_interrupted_after_batch_2_then_resumed_equals_an_uninterrupted_run(src10k, tmp_path):
    model = _model()
    whole = encode_to_store(model, src10k, tmp_path / "a", checkpoint_sha="w", batch_size=BATCH)
    progress, _ = _stop_after(2)
    with pytest.raises(KeyboardInterrupt):
        encode_to_store(
            model, src10k, tmp_path / "b", checkpoint_sha="w", batch_size=BATCH, progress=progress
        )
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["rows_done"] == 2 * BATCH
    assert not manifest["complete"]
    with pytest.raises(StaleStoreError, match="incomplete: 1,024 of 10,000"):
        open_store(tmp_path / "b")
    seen = []
    resumed = encode_to_store(
        model,
        src10k,
        tmp_path / "b",
        checkpoint_sha="w",
        batch_size=100,  # ignored on resume: the batches stay those of the first attempt
        progress=lambda done, n: seen.append(done),
    )
    assert seen[0] == 3 * BATCH  # started at rows_done, not from zero
    assert resumed.recomputed_because is None
    assert resumed.z.tobytes() == whole.z.tobytes()  # bitwise
    assert resumed.recon_error.tobytes() == whole.recon_error.tobytes()


def test_a_partial_store_of_an_older_lsx_resumes_from_its_manifest_prefix(src10k, tmp_path):
    """Before .encode/ progress files, a manifest's rows_done was the finished prefix."""
    model = _model()
    whole = encode_to_store(model, src10k, tmp_path / "a", checkpoint_sha="w", batch_size=BATCH)
    want = whole.z.tobytes()
    store_dir = tmp_path / "old"
    shutil.copytree(tmp_path / "a", store_dir)
    manifest = json.loads((store_dir / "manifest.json").read_text())
    del manifest["world_size"]  # a field the older format did not have
    manifest.update(rows_done=3 * BATCH, complete=False)
    (store_dir / "manifest.json").write_text(json.dumps(manifest))
    z = np.load(store_dir / "z.npy", mmap_mode="r+")
    z[3 * BATCH :] = 0  # rows after the prefix were never written
    z.flush()
    del z
    assert not (store_dir / progress.PROGRESS_DIR).exists()
    seen = []
    store = encode_to_store(
        model, src10k, store_dir, checkpoint_sha="w", progress=lambda d, n: seen.append(d)
    )
    assert seen[0] == 4 * BATCH  # resumed after the prefix, with the store's batch size
    assert store.z.tobytes() == want
    assert store.manifest["world_size"] == 1


def _encode_then_die(src, store_dir) -> None:
    model = _model()
    writer.FLUSH_EVERY_BATCHES = 2

    def progress(done: int, n: int) -> None:
        if done == 5 * BATCH:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no except block

    encode_to_store(model, src, store_dir, checkpoint_sha="w", batch_size=BATCH, progress=progress)


def test_a_killed_encode_resumes_from_its_last_flush(src10k, tmp_path):
    child = multiprocessing.get_context("fork").Process(
        target=_encode_then_die, args=(src10k, tmp_path / "k")
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    assert manifest["rows_done"] == 4 * BATCH  # the last flush before the kill
    model = _model()
    resumed = encode_to_store(model, src10k, tmp_path / "k", checkpoint_sha="w", batch_size=BATCH)
    oracle = embed(model, src10k.read(np.arange(len(src10k))), batch_size=BATCH)
    np.testing.assert_array_equal(resumed.z, oracle.z)


def _peak_bytes(source, store_dir) -> int:
    model = _model(side=16)
    tracemalloc.start()
    try:
        encode_to_store(model, source, store_dir, checkpoint_sha="w", batch_size=256)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_number_of_rows(tmp_path):
    small = _npy(tmp_path / "small.npy", 4_000, side=16)
    large = _npy(tmp_path / "large.npy", 16_000, side=16)
    _peak_bytes(small, tmp_path / "warm")  # first-call allocations (imports, caches)
    p_small = _peak_bytes(small, tmp_path / "s1")
    p_large = _peak_bytes(large, tmp_path / "s2")
    dataset_bytes = 16_000 * 16 * 16 * 4  # the large source as float32: 16 MB
    assert p_large < 1.5 * p_small
    assert p_large < dataset_bytes / 8


def test_store_of_older_weights_is_stale_recomputed_and_not_served(src10k, tmp_path):
    old, new = _model(seed=0), _model(seed=1)
    encode_to_store(old, src10k, tmp_path / "s", checkpoint_sha="old", batch_size=BATCH)
    save_tag(tmp_path / "s", "odd ones", [3, 7], n_samples=len(src10k))  # the user's tag
    with pytest.raises(StaleStoreError, match="other checkpoint weights"):
        open_store(tmp_path / "s", checkpoint_sha="new")
    store = encode_to_store(new, src10k, tmp_path / "s", checkpoint_sha="new", batch_size=BATCH)
    assert "checkpoint_sha 'old' (now 'new')" in store.recomputed_because
    assert read_tags(tmp_path / "s")["odd ones"].tolist() == [3, 7]  # tags name rows: kept
    oracle = embed(new, src10k.read(np.arange(len(src10k))), batch_size=BATCH)
    np.testing.assert_array_equal(store.z, oracle.z)  # the new model's codes, not the old ones
    assert open_store(tmp_path / "s", checkpoint_sha="new").checkpoint_sha == "new"


def test_store_of_changed_data_is_recomputed(tmp_path):
    model = _model()
    src = _npy(tmp_path / "d.npy", 600)
    encode_to_store(model, src, tmp_path / "s", checkpoint_sha="w")
    changed = _npy(tmp_path / "d.npy", 600, seed=9)
    assert changed.content_hash != src.content_hash
    with pytest.raises(StaleStoreError, match="other source data"):
        open_store(tmp_path / "s", source_hash=changed.content_hash)
    store = encode_to_store(model, changed, tmp_path / "s", checkpoint_sha="w")
    assert "source hash" in store.recomputed_because
    np.testing.assert_array_equal(store.z, embed(model, changed.read(np.arange(600))).z)


def test_corrupt_files_give_clear_errors_and_are_recomputed(src10k, tmp_path):
    model = _model()
    store_dir = tmp_path / "c"
    good = encode_to_store(model, src10k, store_dir, checkpoint_sha="w").z.copy()
    z_path = store_dir / "z.npy"
    with open(z_path, "r+b") as fh:
        fh.truncate(z_path.stat().st_size // 2)
    with pytest.raises(DatasetError, match="z.npy .* is corrupt.*encode"):
        open_store(store_dir)
    store = encode_to_store(model, src10k, store_dir, checkpoint_sha="w")
    assert "z.npy" in store.recomputed_because
    np.testing.assert_array_equal(store.z, good)

    np.save(z_path, np.zeros(good.shape, dtype=np.float64))
    with pytest.raises(DatasetError, match="float64.*needs float32"):
        open_store(store_dir)
    (store_dir / "recon_error.npy").unlink()
    (store_dir / "manifest.json").write_text("{ not json")
    with pytest.raises(DatasetError, match="unreadable"):
        open_store(store_dir)
    store = encode_to_store(model, src10k, store_dir, checkpoint_sha="w")
    assert "unreadable" in store.recomputed_because
    np.testing.assert_array_equal(store.z, good)
    with pytest.raises(DatasetError, match="holds no latent store"):
        open_store(tmp_path / "nothing")


def test_wrong_image_shape_for_the_checkpoint_is_refused(src10k, tmp_path):
    with pytest.raises(DataShapeError, match="--image-size 16"):
        encode_to_store(_model(side=16), src10k, tmp_path / "x", checkpoint_sha="w")


def test_list_stores_and_store_dir_for(src10k, tmp_path):
    run = tmp_path / "run"
    model = _model()
    save_checkpoint(model, model.config, run)
    sha = weights_sha256(run)
    good_dir = store_dir_for(run, src10k.spec, "all")
    assert good_dir.parent == run / "stores"
    assert store_dir_for(run, src10k.spec, "test") != good_dir
    encode_to_store(model, src10k, good_dir, checkpoint_sha=sha)
    encode_to_store(model, src10k, store_dir_for(run, "old", "all"), checkpoint_sha="older")
    listed = list_stores(run)
    usable = [s for s in listed if isinstance(s, latentstore.LatentStore)]
    skipped = [s for s in listed if isinstance(s, tuple)]
    assert [s.path for s in usable] == [good_dir]
    assert len(skipped) == 1
    assert "stale" in skipped[0][1]


def test_a_store_keeps_the_sources_primary_label(tmp_path):
    source = open_source("textures")  # label attributes 'pattern' (primary) and 'colour'
    assert source.primary == "pattern"
    model = build_model(
        make_config("ae", input_shape=source.input_shape, latent_dim=4, hidden_dim=8)
    ).eval()
    store = encode_to_store(model, source, tmp_path / "s", checkpoint_sha="w")
    assert sorted(store.label_names) == ["colour", "pattern"]  # the manifest's keys are sorted ...
    assert open_store(tmp_path / "s").primary == "pattern"  # ... the primary is recorded
    np.testing.assert_array_equal(open_store(tmp_path / "s").y, source.labels["pattern"])
    # a store written before the primary was recorded gets it from the next encode, unchanged
    manifest_path = tmp_path / "s" / "manifest.json"
    old = json.loads(manifest_path.read_text())
    del old["primary"]
    manifest_path.write_text(json.dumps(old))
    assert open_store(tmp_path / "s").primary == "colour"  # the first sorted key, as before
    z_before = np.asarray(open_store(tmp_path / "s").z).copy()
    encode_to_store(model, source, tmp_path / "s", checkpoint_sha="w")
    assert open_store(tmp_path / "s").primary == "pattern"
    np.testing.assert_array_equal(open_store(tmp_path / "s").z, z_before)
