"""Tags and exports of an embedding set's map (:mod:`lsx.embeddings`), under the store view of
:mod:`lsx.app.store_map`. An embedding set's ids are its rows, so its tags live in its own
``tags.json`` (:mod:`lsx.tags`, as for a run) and an export holds the rows' labels, metadata,
vectors and map coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from lsx.embeddings import EmbeddingSet
from lsx.errors import LsxError
from lsx.latents.projections import cached_store_projection
from lsx.tags import delete_tag, read_tags, save_tag, tag_labels

TAG_NAME = "set_tag_name"
TAG_SHOW = "set_tag_show"
MESSAGE = "set_tag_message"
NO_TAG = "(the map's selection)"


def _stamp(folder: Path) -> int:
    path = folder / "tags.json"
    return path.stat().st_mtime_ns if path.exists() else 0


def tag_panel(emb: EmbeddingSet, ids: list[int]) -> list[int]:
    """Tag the selection, show a tag's points instead of the map's selection, delete a tag.

    Returns the ids to show: the chosen tag's, else the map's selection.
    """
    try:
        tags = read_tags(emb.path)
    except LsxError as err:
        st.warning(f"The tags of {emb.name} are unreadable: {err}")
        tags = {}
    if msg := st.session_state.pop(MESSAGE, None):
        getattr(st, msg[0])(msg[1])
    left, right = st.columns([2, 1])
    with left.form("set_tag_form", border=False):
        st.text_input("Tag name", key=TAG_NAME, placeholder="odd ones")
        if st.form_submit_button(f"Tag the selection ({len(ids):,} points)"):
            try:
                save_tag(emb.path, st.session_state[TAG_NAME], ids, n_samples=emb.n)
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
    shown = right.selectbox("Show", options, key=TAG_SHOW, help="A tag's points, or the map's.")
    if shown == NO_TAG:
        return ids
    if right.button(f"Delete tag '{shown}'"):
        delete_tag(emb.path, shown)
        st.session_state[MESSAGE] = ("info", f"Deleted tag '{shown}'.")
        st.rerun()
    return [int(i) for i in tags[shown]]


@st.cache_data(max_entries=8, show_spinner=False)
def _export_bytes(
    folder: str, version: int, method: str, seed: int, ids: tuple[int, ...], stamp: int
) -> dict[str, bytes]:
    from lsx.embeddings import load_embedding_set
    from lsx.export import export_table, table_bytes  # pandas: not on the map's first request

    emb = load_embedding_set(folder)
    keep = np.asarray(ids, dtype=np.int64)
    coords, _, _ = cached_store_projection(emb.store, method, 2, seed)
    labels = {
        a: np.asarray(names, dtype=object)[np.asarray(emb.labels[a])[keep]]
        for a, names in emb.label_names.items()
    }
    frame = export_table(
        keep, emb.n, labels, np.asarray(emb.z[keep]), np.asarray(coords)[keep],
        np.asarray(emb.store.recon_error[keep]), tag_labels(read_tags(emb.path), keep),
    )  # fmt: skip
    frame = frame.drop(columns=["split", "index", "recon_error"])  # one split, no decoder
    meta = emb.metadata()
    for col in meta.columns:
        frame.insert(1, f"meta_{col}", meta[col].to_numpy()[keep])
    return {fmt: table_bytes(frame, fmt) for fmt in ("csv", "parquet", "npy")}


def export_panel(
    emb: EmbeddingSet, ids: list[int], path: str, version: int, method: str, seed: int
) -> None:
    """Download buttons: the selection with labels, metadata, vectors and map coordinates."""
    st.subheader("Export")
    data = _export_bytes(str(emb.path), version, method, seed, tuple(ids), _stamp(emb.path))
    st.caption(
        f"{len(ids):,} rows: id, metadata, labels, vector, {method.upper()} coordinates, tag."
    )
    mimes = {"csv": "text/csv", "parquet": "application/octet-stream",
             "npy": "application/octet-stream"}  # fmt: skip
    for col, (fmt, mime) in zip(st.columns(3), mimes.items(), strict=True):
        col.download_button(
            fmt.upper() if fmt != "npy" else "Vectors (.npy)", data[fmt],
            file_name=f"{emb.name}-selection.{fmt}", mime=mime, key=f"set_export_{fmt}",
        )  # fmt: skip
