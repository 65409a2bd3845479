"""Exports of a selection on a latent store's map (:mod:`lsx.app.store_map`): the table of
:func:`lsx.export.store_table`, downloaded as CSV, Parquet or ``.npy``, made when a button is
clicked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.app import set_tags, widgets
from lsx.latents.projections import cached_store_projection
from lsx.latents.store import open_store


def export_frame(path: str, method: str, seed: int, ids: Sequence[int], found: Any = None):
    """The selection of a store as a table (:func:`lsx.export.store_table`) with its tags, and
    cluster and outlier score when ``found``; an embedding set's store adds the set's metadata
    and drops ``row`` (a set's rows are its ids)."""
    from lsx.embeddings import load_embedding_set
    from lsx.export import store_table  # pandas: not on the map's first request
    from lsx.tags import read_tags, tag_labels

    store, keep = open_store(Path(path)), np.asarray(ids, dtype=np.int64)
    coords, _, _ = cached_store_projection(store, method, 2, seed)
    folder = set_tags.tags_dir(path)
    frame = store_table(
        store, keep, coords, clusters=None if found is None else found.labels,
        outlier=None if found is None else found.outlier,
        tag=tag_labels(read_tags(folder), keep),
    )  # fmt: skip
    if folder != Path(path):  # an embedding set's store
        frame = frame.drop(columns=["row"])
        meta = load_embedding_set(folder).metadata()
        for col in meta.columns:
            frame.insert(1, f"meta_{col}", meta[col].to_numpy()[keep])
    return frame


def export_panel(path: str, method: str, seed: int, ids: list[int], found: Any = None) -> None:
    """Download buttons of the selection (the files are made when a button is clicked)."""
    st.subheader("Export")
    folder = set_tags.tags_dir(path)
    first = "id, metadata" if folder != Path(path) else "id, source row"
    error = "" if folder != Path(path) else ", reconstruction error"
    extra = ", cluster, outlier score" if found is not None else ""
    st.caption(
        f"{len(ids):,} rows: {first}, labels, vector, {method.upper()} coordinates{error}"
        f"{extra}, tag."
    )
    chosen = tuple(ids)
    widgets.download_buttons(
        folder.name, lambda: export_frame(path, method, seed, chosen, found), "store_export"
    )
