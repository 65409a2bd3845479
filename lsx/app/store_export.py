"""Exports of a selection on a latent store's map (:mod:`lsx.app.store_map`): the table of
:func:`lsx.export.store_table`, downloaded as CSV, Parquet or ``.npy``, made when a button is
clicked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.app import widgets
from lsx.latents.projections import cached_store_projection
from lsx.latents.store import open_store


def export_frame(path: str, method: str, seed: int, ids: Sequence[int], found: Any = None):
    """The selection of a store as a table (:func:`lsx.export.store_table`)."""
    from lsx.export import store_table  # pandas: not on the map's first request
    from lsx.tags import read_tags, tag_labels

    store = open_store(Path(path))
    coords, _, _ = cached_store_projection(store, method, 2, seed)
    return store_table(
        store, ids, coords, clusters=None if found is None else found.labels,
        outlier=None if found is None else found.outlier,
        tag=tag_labels(read_tags(path), np.asarray(ids, dtype=np.int64)),
    )  # fmt: skip


def export_panel(
    path: str, version: int, method: str, seed: int, ids: list[int], found: Any = None
) -> None:
    """Download buttons of the selection (made when clicked): id, source row, labels, vector,
    map coordinates, reconstruction error, cluster and outlier score when found."""
    st.subheader("Export")
    extra = ", cluster, outlier score" if found is not None else ""
    st.caption(
        f"{len(ids):,} rows: id, source row, labels, vector, {method.upper()} coordinates, "
        f"reconstruction error{extra}, tag."
    )
    chosen = tuple(ids)
    widgets.download_buttons(
        Path(path).name, lambda: export_frame(path, method, seed, chosen, found), "store_export"
    )
