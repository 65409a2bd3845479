"""Lookup on an embedding set (:mod:`lsx.embeddings`): the nearest neighbours of one of its rows.

An embedding set has no encoder, so an uploaded image cannot be placed in its space; the page
says so and searches by row instead (one kNN index per set version, built once per process).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lsx.analysis.knn import KnnIndex, build_index
from lsx.app import store_map, widgets
from lsx.embeddings import EmbeddingSet, load_embedding_set, store_path

ROW = "set_lookup_row"
K = "set_lookup_k"


@st.cache_resource(max_entries=4, show_spinner="Building the nearest-neighbour index ...")
def _index(folder: str, version: int) -> KnnIndex:
    return build_index(np.asarray(load_embedding_set(folder).z))


@st.cache_resource(max_entries=4, show_spinner=False)
def _metadata(folder: str, version: int) -> pd.DataFrame:
    """The set's metadata table, read once per set version (not on every rerun)."""
    return load_embedding_set(folder).metadata()


def neighbours_table(
    emb: EmbeddingSet, ids: np.ndarray, dist: np.ndarray, meta: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per neighbour: id, distance, labels (names), metadata (``meta``: the set's
    metadata table, read from the set when not given)."""
    out = pd.DataFrame({"id": ids, "distance": dist})
    for attr, names in emb.label_names.items():
        out[attr] = np.asarray(names, dtype=object)[np.asarray(emb.labels[attr])[ids]]
    meta = emb.metadata() if meta is None else meta
    for col in meta.columns:
        if col not in out:
            out[col] = meta[col].to_numpy()[ids]
    return out


def view(emb: EmbeddingSet) -> None:
    """Row picker, k, the neighbours table and (when the set has images) their images."""
    st.info(
        f"**{emb.name}** is an embedding set (vectors without a model): looking up an uploaded "
        "image needs an encoder to place it in this space, which the set does not have. Search "
        "by row instead: the nearest neighbours of one of its vectors."
    )
    left, right = st.columns(2)
    row = int(left.number_input("Row id", 0, emb.n - 1, 0, key=ROW))
    k = int(right.slider("Neighbours", 1, min(50, emb.n - 1), min(8, emb.n - 1), key=K))
    path = str(store_path(emb.path))
    version = store_map.store_version(path)
    index = _index(str(emb.path), version)
    ids, dist = index.query(np.asarray(emb.z[row : row + 1]), k + 1)
    keep = ids[0] != row  # the row itself is its own nearest neighbour
    ids, dist = ids[0][keep][:k], dist[0][keep][:k]
    st.caption(f"Search: {index.info.get('method', '?')} over {emb.n:,} vectors.")
    meta = _metadata(str(emb.path), version)
    st.dataframe(neighbours_table(emb, ids, dist, meta), hide_index=True)
    x, captions, why = store_map.store_images(path, version, (row, *map(int, ids)))
    if x is None:
        st.caption(f"Images not shown: {why}.")
        return
    widgets.image_row(x, ["query · " + captions[0], *captions[1:]])
