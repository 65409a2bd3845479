"""Tags of a latent store's map and exports of an embedding set's (:mod:`lsx.embeddings`), under
the store view of :mod:`lsx.app.store_map`. A store's ids are its rows, so its tags live in a
``tags.json`` of their own (:mod:`lsx.tags`, as for a run): in an embedding set's folder, or in
a run's store folder (kept when the store is encoded again); an export of a set holds the rows'
labels, metadata, vectors and map coordinates.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lsx.embeddings import is_embedding_set
from lsx.errors import LsxError
from lsx.tags import delete_tag, read_tags, save_tag

TAG_NAME = "set_tag_name"
TAG_SHOW = "set_tag_show"
MESSAGE = "set_tag_message"
NO_TAG = "(none: the selection)"


def tags_stamp(folder: Path) -> int:
    """The version of a set's tags (``tags.json``'s mtime; 0 without tags)."""
    path = folder / "tags.json"
    return path.stat().st_mtime_ns if path.exists() else 0


def tag_panel(folder: Path, n: int, ids: list[int]) -> list[int]:
    """Tag the selection, show a tag's points instead of the map's selection, delete a tag.

    ``folder`` holds the ``tags.json`` of the rows (:func:`tags_dir`: an embedding set's folder,
    or a run's latent store), ``n`` its number of rows. Returns the ids to
    show: the chosen tag's, else the map's selection.
    """
    try:
        tags = read_tags(folder)
    except LsxError as err:
        st.warning(f"The tags of {folder.name} are unreadable: {err}")
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


def tags_dir(path: str) -> Path:
    """Where the tags of a store's rows live: the embedding set's folder for a set's store
    (``<set>/stores/<store>``), else the store's own folder."""
    store_dir = Path(path)
    return store_dir.parent.parent if is_embedding_set(store_dir.parent.parent) else store_dir
