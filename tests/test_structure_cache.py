"""Clusters and outlier scores of a latent store, cached in <store>/structure/."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from lsx.analysis.structure import fit_clusters, outlier_scores
from lsx.data.lazy import open_source
from lsx.errors import ConfigError
from lsx.latents.structure import STORE_STRUCTURE_DIR, cached_store_structure
from lsx.latents.writer import encode_to_store
from lsx.models import build_model, make_config


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("structure")
    rng = np.random.default_rng(0)
    np.save(tmp / "x.npy", rng.integers(0, 256, size=(3000, 8, 8), dtype=np.uint8))
    torch.manual_seed(0)
    model = build_model(make_config("ae", input_shape=(1, 8, 8), latent_dim=4, hidden_dim=16))
    source = open_source(f"npy:{tmp / 'x.npy'}")
    return encode_to_store(model.eval(), source, tmp / "store", checkpoint_sha="w", batch_size=512)


def test_computed_once_then_served_from_disk_equal_to_the_analysis(store):
    first, hit = cached_store_structure(store, seed=3)
    assert not hit
    assert first.manifest["cached"]
    again, hit = cached_store_structure(store, seed=3)
    assert hit
    assert np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.outlier, again.outlier)
    direct = fit_clusters(store.z, seed=3)
    assert np.array_equal(again.labels, direct.labels)
    assert again.k == direct.k
    assert np.allclose(again.outlier, outlier_scores(store.z, seed=3), rtol=1e-6)
    assert again.centres.shape == (direct.k, store.dim)
    assert "silhouette" in again.note
    assert again.manifest["clusters_found"]["sweep"]


def test_other_seed_or_k_is_another_entry_and_a_miss_without_compute(store):
    assert cached_store_structure(store, seed=11, compute=False) == (None, False)
    fixed, hit = cached_store_structure(store, seed=3, k=4)
    assert not hit
    assert fixed.k == 4
    assert "as asked" in fixed.note
    with pytest.raises(ConfigError, match="k"):
        cached_store_structure(store, k=0)


def test_a_corrupt_or_foreign_entry_is_recomputed_not_served(store):
    cached_store_structure(store, seed=5)
    folder = store.path / STORE_STRUCTURE_DIR
    for npz in folder.glob("*.npz"):
        npz.write_bytes(npz.read_bytes()[:100])  # truncated
    fresh, hit = cached_store_structure(store, seed=5)
    assert not hit
    assert len(fresh.labels) == store.n
    # a manifest from another store version (other weights) is not this store's entry
    for path in folder.glob("*.json"):
        m = json.loads(path.read_text())
        m["store"]["checkpoint_sha"] = "other"
        path.write_text(json.dumps(m))
    assert cached_store_structure(store, seed=5, compute=False) == (None, False)


def test_store_table_of_a_selection_in_the_ids_order(store):
    from lsx.export import store_table, table_bytes
    from lsx.latents.projections import cached_store_projection

    coords, _, _ = cached_store_projection(store, "pca", 2, 0)
    found, _ = cached_store_structure(store, seed=3)
    ids = [2500, 7, 1200, 7 + 1]
    frame = store_table(store, ids, coords, clusters=found.labels, outlier=found.outlier)
    assert frame["id"].tolist() == ids
    assert frame["row"].tolist() == np.asarray(store.rows)[ids].tolist()
    names = store.label_names[store.primary]
    assert frame[f"label_{store.primary}"].tolist() == [names[c] for c in store.y[ids]]
    z = frame[[f"z_{j}" for j in range(store.dim)]].to_numpy()
    np.testing.assert_array_equal(z, np.asarray(store.z)[ids])
    np.testing.assert_array_equal(frame[["map_1", "map_2"]].to_numpy(), coords[ids])
    np.testing.assert_array_equal(frame["recon_error"], np.asarray(store.recon_error)[ids])
    assert frame["cluster"].tolist() == found.labels[ids].tolist()
    np.testing.assert_array_equal(frame["outlier_score"], found.outlier[ids])
    assert np.load(io.BytesIO(table_bytes(frame, "npy"))).shape == (4, store.dim)
    with pytest.raises(ConfigError, match="Nothing to export"):
        store_table(store, [], coords)
    with pytest.raises(ConfigError, match="store rows"):
        store_table(store, [store.n], coords)
