"""AppTest of the Lookup page searching a run's latent stores: the store is offered, neighbours
come from the store (checked against a brute-force scipy search over ``store.z``) with their images
read from the store's source, the index is built once per store version, a store whose source
moved shows ids, labels and distances with what to do, and a stale store is not served."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from streamlit.testing.v1 import AppTest

import lsx.app.lookup_store as lookup_store
from lsx.analysis.embedding import embed
from lsx.app import state
from lsx.app.cache import THREADS_ENV
from lsx.checkpoint import load_checkpoint, weights_sha256
from lsx.data.lazy import open_source
from lsx.data.uploads import prepare_upload
from lsx.latents.store import open_store, store_dir_for
from lsx.latents.writer import encode_to_store
from tests.app.test_lookup_page import make_run
from tests.data.upload_cases import encode, gradient

PAGE = str(Path(__file__).parents[2] / "pages" / "3_lookup.py")
RUN = "tiny-ae-digits"
N_STORE, N_MOVED, N_STALE = 3000, 400, 300
K = 8  # the page's default number of neighbours


def write_npy(path: Path, n: int, seed: int) -> str:
    """n random 8x8 grey uint8 images with 5 label classes; returns the ``npy:`` spec."""
    rng = np.random.default_rng(seed)
    np.save(path, rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8))
    np.save(str(path).replace(".npy", ".labels.npy"), rng.integers(0, 5, size=n))
    return f"npy:{path}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("checkpoints")
    run = make_run(root, RUN, "ae")
    model, _ = load_checkpoint(run)
    sha = weights_sha256(run)
    data = tmp_path_factory.mktemp("data")
    for name, n, seed, weights in (
        ("big", N_STORE, 1, sha),
        ("moved", N_MOVED, 2, sha),
        ("stale", N_STALE, 3, "0" * 64),  # made by other weights: never served
    ):
        source = open_source(write_npy(data / f"{name}.npy", n, seed))
        encode_to_store(
            model, source, store_dir_for(run, source.spec), checkpoint_sha=weights, batch_size=512
        )
    return root


def store_path(root: Path, name: str) -> Path:
    """The store folder of ``<name>.npy`` (slug: the spec's tail, split and a hash)."""
    return next(p for p in (root / RUN / "stores").iterdir() if f"{name}.npy-all-" in p.name)


def page(monkeypatch: pytest.MonkeyPatch, root: Path) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    monkeypatch.setenv(THREADS_ENV, "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[state.RUN_DIR] = str(root / RUN)
    return at.run(timeout=60)


def search_store(at: AppTest, path: Path, files: dict[str, bytes]) -> AppTest:
    at.selectbox(key=state.LU_DB).set_value(lookup_store.STORE_PREFIX + str(path)).run(timeout=60)
    at.file_uploader(key=state.LU_UPLOADS).set_value(
        [(name, data, "application/octet-stream") for name, data in files.items()]
    )
    return at.run(timeout=60)


def brute_force(root: Path, path: Path, png: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The K nearest store rows of an upload, independently: scipy cdist + argsort."""
    model, config = load_checkpoint(root / RUN)
    z = embed(model, prepare_upload(png, tuple(config.input_shape), name="q.png").x[None]).z
    d = cdist(z.astype(np.float64), np.asarray(open_store(path).z, dtype=np.float64))[0]
    order = np.argsort(d, kind="stable")[:K]
    return order, d[order]


def test_usable_stores_are_offered_and_a_stale_one_is_not(monkeypatch, root):
    at = page(monkeypatch, root)
    assert not at.exception
    box = at.selectbox(key=state.LU_DB)
    labels = list(box.proto.options)
    big = next(label for label in labels if "big.npy-all" in label)
    assert re.fullmatch(r"store: \S+big\.npy-all-\w+ \(3,000 images, npy:\S+/big\.npy\)", big)
    assert any(re.match(r"store: \S+moved\.npy-all-\w+ \(400 images", label) for label in labels)
    assert not any("stale.npy" in label for label in labels)
    assert lookup_store.STORE_PREFIX + str(store_path(root, "stale")) not in box.options
    assert "(training split)" in labels[0]  # the default stays the run's own data
    note = next(e for e in at.expander if "not offered" in e.label)
    assert "1 latent store" in note.label
    reason = str(note.markdown[0].value)
    assert "stale.npy" in reason
    assert "is stale: it was made from other checkpoint weights" in reason


def test_neighbours_come_from_the_store_with_images_and_the_index_is_built_once(monkeypatch, root):
    builds = []
    real = lookup_store.build_index
    monkeypatch.setattr(
        lookup_store, "build_index", lambda *a, **kw: builds.append(1) or real(*a, **kw)
    )
    lookup_store._store_search.clear()
    png = encode(gradient().convert("L"))
    path = store_path(root, "big")
    at = search_store(page(monkeypatch, root), path, {"q.png": png})
    assert not at.exception
    assert not at.error
    assert any("exact (FAISS flat) over 3,000 vectors" in c.value for c in at.caption)
    gallery = str(at.get("image")[1].proto)
    shown = [int(i) for i in re.findall(r"store #(\d+)", gallery)]
    dists = [float(d) for d in re.findall(r"store #\d+ · \w+ · d ([\d.]+)", gallery)]
    ids, d = brute_force(root, path, png)
    assert shown == ids.tolist()
    np.testing.assert_allclose(dists, d, atol=1e-3)
    store = open_store(path)
    names = store.label_names["class"]
    for i in ids:  # captions carry the store's labels
        assert f"store #{i} · {names[int(store.y[i])]} ·" in gallery
    assert gallery.count("store #") == K  # one image per neighbour
    # a second upload (and rerun) reuses the cached index: built once per store version
    at.file_uploader(key=state.LU_UPLOADS).set_value(
        [("q.png", png, "image/png"), ("b.png", encode(gradient(12, 9)), "image/png")]
    )
    at.run(timeout=60)
    assert not at.exception
    assert [r["status"] for r in next(x.value for x in at.dataframe if "status" in x.value)
            .to_dict("records")] == ["ok", "ok"]  # fmt: skip
    assert len(builds) == 1


def test_a_moved_source_gives_ids_labels_distances_and_what_to_do(monkeypatch, root, tmp_path):
    path = store_path(root, "moved")
    spec = open_store(path).spec
    npy = Path(spec.removeprefix("npy:"))
    shutil.move(npy, tmp_path / "elsewhere.npy")
    try:
        png = encode(gradient(20, 20).convert("L"))
        at = search_store(page(monkeypatch, root), path, {"q.png": png})
        assert not at.exception
        warning = next(w.value for w in at.warning if "Images not shown" in w.value)
        assert "cannot be read" in warning
        assert str(npy) in warning
        assert "encode the data from its new place" in warning
        table = next(x.value for x in at.dataframe if "store id" in x.value.columns)
        ids, d = brute_force(root, path, png)
        assert table["store id"].tolist() == ids.tolist()
        np.testing.assert_allclose(table["distance"], d, atol=1e-3)
        store = open_store(path)
        assert table["class"].tolist() == [store.label_names["class"][store.y[i]] for i in ids]
        assert len(at.get("image")) == 1  # only the upload's triptych, no gallery
    finally:
        shutil.move(tmp_path / "elsewhere.npy", npy)


def test_a_store_that_became_stale_is_no_longer_served(monkeypatch, root):
    path = store_path(root, "big")
    at = page(monkeypatch, root)
    at.selectbox(key=state.LU_DB).set_value(lookup_store.STORE_PREFIX + str(path)).run(timeout=60)
    manifest = path / "manifest.json"
    original = manifest.read_text()
    manifest.write_text(original.replace('"complete": true', '"complete": false'))
    try:
        at.run(timeout=60)
        assert not at.exception
        assert any("no longer usable" in w.value for w in at.warning)
        assert at.selectbox(key=state.LU_DB).value == ""
        note = next(e for e in at.expander if "not offered" in e.label)
        assert "incomplete" in str([m.value for m in note.markdown])
    finally:
        manifest.write_text(original)


def test_lookup_images_through_a_prebuilt_index_equals_the_array_path(root):
    from lsx.analysis.clusters import cluster_space
    from lsx.analysis.knn import build_index
    from lsx.analysis.lookup import lookup_images
    from lsx.data import load_dataset
    from lsx.errors import DataShapeError

    model, _ = load_checkpoint(root / RUN)
    ds = load_dataset("digits")
    z_db = np.asarray(open_store(store_path(root, "big")).z)
    space = cluster_space(model, embed(model, ds.x_train).z, ds.labels_train, ds.label_names)
    x = ds.x_test[:5]
    via_index = lookup_images(model, space, x, build_index(z_db, method="exact"), k=6)
    via_array = lookup_images(model, space, x, z_db, k=6)
    np.testing.assert_array_equal(via_index.neighbour_ids, via_array.neighbour_ids)
    np.testing.assert_allclose(via_index.neighbour_dist, via_array.neighbour_dist, rtol=1e-6)
    d = cdist(via_index.z.astype(np.float64), z_db.astype(np.float64))
    np.testing.assert_array_equal(via_index.neighbour_ids, np.argsort(d, axis=1)[:, :6])
    with pytest.raises(DataShapeError, match="encoded by this checkpoint"):
        lookup_images(model, space, x, build_index(z_db[:, :4]), k=3)
