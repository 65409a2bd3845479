"""Tags of a latent store's map and exports of an embedding set's (:mod:`lsx.embeddings`), under
the store view of :mod:`lsx.app.store_map`. A store's ids are its rows, so its tags live in a
``tags.json`` of their own (:mod:`lsx.tags`, as for a run): in an embedding set's folder, or in
a run's store folder (kept when the store is encoded again); an export of a set holds the rows'
labels, metadata, vectors and map coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.app import widgets
from lsx.embeddings import EmbeddingSet
from lsx.errors import LsxError
from lsx.latents.projections import cached_store_projection
from lsx.tags import delete_tag, read_tags, save_tag, tag_labels

TAG_NAME = "set_tag_name"
TAG_SHOW = "set_tag_show"
MESSAGE = "set_tag_message"
NO_TAG = "(none: the selection)"


def tags_stamp(folder: Path) -> int:
    """The version of a set's tags (``tags.json``'s mtime; 0 without tags)."""
    path = folder / "tags.json"
    return path.stat().st_mtime_ns if path.exists() else 0


def tag_panel(folder: Path, name: str, n: int, ids: list[int]) -> list[int]:
    """Tag the selection, show a tag's points instead of the map's selection, delete a tag.

    ``folder`` holds the ``tags.json`` of the rows (an embedding set's folder, or a run's latent
    store), ``name`` is what the warnings call it, ``n`` its number of rows. Returns the ids to
    show: the chosen tag's, else the map's selection.
    """
    try:
        tags = read_tags(folder)
    except LsxError as err:
        st.warning(f"The tags of {name} are unreadable: {err}")
        tags = {}
    if msg := st.session_state.pop(MESSAGE, None):
        getattr(st, msg[0])(msg[1])
    left, right = st.columns([2, 1])
    with left.form("set_tag_form", border=False):
        st.text_input("Tag name", key=TAG_NAME, placeholder="odd ones")
        if st.form_submit_button(f"Tag the selection ({len(ids):,} points)"):
            try:
                save_tag(folder, st.session_state[TAG_NAME], ids, n_samples=n)
                st.session_state[MESSAGE] = (
                    "success",
                    f"Saved tag '{st.session_state[TAG_NAME]}'.",
                )
            except LsxError as err:
                st.session_state[MESSAGE] = ("error", str(err))
            st.rerun()
    options = [NO_TAG, *tags]
    if st.session_state.get(TAG_SHOW) not in options:
        st.session_state[TAG_SHOW] = NO_TAG
    shown = right.selectbox(
        "Show a tag", options, key=TAG_SHOW, help="A tag's points instead of the selection."
    )
    if shown == NO_TAG:
        return ids
    if right.button(f"Delete tag '{shown}'"):
        delete_tag(folder, shown)
        st.session_state[MESSAGE] = ("info", f"Deleted tag '{shown}'.")
        st.rerun()
    return [int(i) for i in tags[shown]]


def export_frame(folder: str, method: str, seed: int, ids: Sequence[int], found: Any = None):
    """The selection of a set as a table: id, metadata, labels, vector, map coordinates,
    cluster and outlier score (when ``found``: the set's store structure), tag."""
    from lsx.embeddings import load_embedding_set
    from lsx.export import store_table  # pandas: not on the map's first request

    emb = load_embedding_set(folder)
    keep = np.asarray(ids, dtype=np.int64)
    coords, _, _ = cached_store_projection(emb.store, method, 2, seed)
    frame = store_table(
        emb.store, keep, coords, tag=tag_labels(read_tags(emb.path), keep),
        clusters=None if found is None else found.labels,
        outlier=None if found is None else found.outlier,
    )  # fmt: skip
    frame = frame.drop(columns=["row"])  # a set's rows are its ids
    meta = emb.metadata()
    for col in meta.columns:
        frame.insert(1, f"meta_{col}", meta[col].to_numpy()[keep])
    return frame


def export_panel(
    emb: EmbeddingSet, ids: list[int], method: str, seed: int, found: Any = None
) -> None:
    """Download buttons: the selection with labels, metadata, vectors and map coordinates (the
    files are made when a button is clicked)."""
    st.subheader("Export")
    extra = ", cluster, outlier score" if found is not None else ""
    st.caption(
        f"{len(ids):,} rows: id, metadata, labels, vector, {method.upper()} coordinates{extra}, "
        "tag."
    )
    folder, chosen = str(emb.path), tuple(ids)
    widgets.download_buttons(
        emb.name, lambda: export_frame(folder, method, seed, chosen, found), "set_export"
    )
