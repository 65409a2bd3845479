"""Tags and exports on the Latent map page: the current selection (map, tag or link), naming it
as a tag, deleting a tag (with a confirmation), colouring the map by tag, and the download
buttons (CSV, Parquet, latents as .npy).

Tags live in the run folder (:mod:`lsx.tags`) and are read from disk on every rerun, so another
browser tab's tags appear at its next interaction and survive a restart. Exports go through
:mod:`lsx.export`, the same code as ``python -m lsx export``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st

from lsx.app import cache, state
from lsx.app.dataset_map import MapFrame
from lsx.app.widgets import selected_ids
from lsx.data import Dataset
from lsx.errors import LsxError
from lsx.tags import (
    delete_tag,
    read_tags,
    save_tag,
    tag_labels,
)

TAG_COLOR = "tag"


@dataclass(frozen=True)
class Selection:
    """The ids the panels act on and where they came from."""

    ids: tuple[int, ...]
    source: str  # "map selection", "tag 'x'", "link", or "" when empty
    tag: str = ""


def tags_of(run_dir: str) -> dict[str, np.ndarray]:
    """The run's tags, or none with a sidebar warning if the tag file is unreadable."""
    try:
        return read_tags(run_dir)
    except LsxError as err:
        st.sidebar.warning(str(err))
        return {}


def recolour(frame: MapFrame, run_dir: str) -> MapFrame:
    """The frame coloured by tag membership (``(untagged)``, a tag name, ``(several tags)``)."""
    names = tag_labels(tags_of(run_dir), frame.ids)
    categories, codes = np.unique(names.astype(str), return_inverse=True)
    return replace(frame, color=codes, categories=tuple(categories), color_title="tag")


def selection(event: object, frame: MapFrame, run_dir: str, n_all: int) -> Selection:
    """The current selection: a tag picked in the sidebar, else the map's, else the link's ids.

    Draws the sidebar's "Selection" picker; a tag or ids from a link that do not exist give a
    message and an empty selection.
    """
    tags = tags_of(run_dir)
    wanted = st.session_state[state.LM_TAG_SOURCE]
    if wanted and wanted not in tags:
        if wanted != st.session_state[state.LM_TAG_DROPPED]:
            st.warning(
                f"This run has no tag {wanted[:80]!r} (its tags: {sorted(tags) or 'none'}); "
                "showing the map selection instead."
            )
        st.session_state[state.LM_TAG_SOURCE] = ""
    options = ["", *tags]
    st.sidebar.selectbox(
        "Selection", options, key=state.LM_TAG_SOURCE,
        format_func=lambda t: f"tag: {t} ({len(tags[t]):,})" if t else "the map selection",
        help="A tag acts as the selection: gallery, export, interpolation ends.",
    )  # fmt: skip
    tag = st.session_state[state.LM_TAG_SOURCE]
    if tag:
        return Selection(tuple(int(i) for i in tags[tag]), f"tag '{tag}'", tag)
    ids = selected_ids(event, frame.ids)
    if ids:
        st.session_state[state.LM_PINNED] = ()
        return Selection(tuple(ids), "map selection")
    pinned = tuple(st.session_state[state.LM_PINNED])
    bad = [i for i in pinned if not 0 <= i < n_all]
    if bad:
        st.warning(f"The link's ids {bad[:5]} are not in this run's data (0..{n_all - 1}).")
        st.session_state[state.LM_PINNED] = pinned = ()
    return Selection(pinned, "link" if pinned else "")


def _message() -> None:
    msg = st.session_state[state.LM_TAG_MESSAGE]
    if msg:
        getattr(st.sidebar, msg[0])(msg[1])
        st.session_state[state.LM_TAG_MESSAGE] = None


def tag_sidebar(run_dir: str, sel: Selection, n_all: int) -> None:
    """Sidebar: name the selection as a tag, list the tags, delete one after a confirmation."""
    st.sidebar.subheader("Tags")
    _message()
    tags = tags_of(run_dir)
    st.sidebar.caption(
        " · ".join(f"**{n}** ({len(v):,})" for n, v in tags.items()) or "No tags yet."
    )
    with st.sidebar.form("lm_tag_form", border=False):
        st.text_input("Tag name", key=state.LM_TAG_NAME, max_chars=None, placeholder="blurry 7s")
        if st.form_submit_button(f"Tag the selection ({len(sel.ids):,} points)"):
            try:
                save_tag(run_dir, st.session_state[state.LM_TAG_NAME], sel.ids, n_samples=n_all)
            except LsxError as err:
                st.session_state[state.LM_TAG_MESSAGE] = ("error", str(err))
            else:
                name = st.session_state[state.LM_TAG_NAME].strip()
                st.session_state[state.LM_TAG_MESSAGE] = ("success", f"Saved tag '{name}'.")
            st.rerun()
    if not tags:
        return
    st.sidebar.selectbox("Tag to delete", list(tags), key=state.LM_TAG_DELETE)
    confirm = st.session_state[state.LM_TAG_CONFIRM]
    if confirm is None:
        if st.sidebar.button("Delete tag ..."):
            st.session_state[state.LM_TAG_CONFIRM] = st.session_state[state.LM_TAG_DELETE]
            st.rerun()
        return
    st.sidebar.warning(f"Delete the tag '{confirm}' ({len(tags.get(confirm, ())):,} points)?")
    yes, no = st.sidebar.columns(2)
    if yes.button("Yes, delete", type="primary"):
        try:
            delete_tag(run_dir, confirm)
            st.session_state[state.LM_TAG_MESSAGE] = ("info", f"Deleted tag '{confirm}'.")
        except LsxError as err:
            st.session_state[state.LM_TAG_MESSAGE] = ("error", str(err))
        st.session_state[state.LM_TAG_DROPPED] = confirm  # the picker falls back next run
        st.session_state[state.LM_TAG_CONFIRM] = None
        st.rerun()
    if no.button("Cancel"):
        st.session_state[state.LM_TAG_CONFIRM] = None
        st.rerun()


@st.cache_data(max_entries=8, show_spinner=False)
def _export_bytes(
    run_dir: str, sha: str, data_hash: str, method: str, n_comp: int, seed: int,
    ids: tuple[int, ...], stamp: int,
) -> dict[str, bytes]:  # fmt: skip
    from lsx.export import export_table, table_bytes  # pandas: not on the map's first request

    ds, _ = cache.run_dataset(run_dir)
    coords, _ = cache.projection(run_dir, sha, data_hash, method, n_comp, seed)
    parts = [cache.embedding(run_dir, sha, data_hash, s) for s in cache.SPLITS]
    z = np.concatenate([p[0] for p in parts])
    err = np.concatenate([p[1] for p in parts])
    keep = np.asarray(ids, dtype=np.int64)
    frame = export_table(
        keep, len(ds.x_train), _labels(ds, keep), z[keep], coords[keep], err[keep],
        tag_labels(read_tags(run_dir), keep),
    )  # fmt: skip
    return {fmt: table_bytes(frame, fmt) for fmt in ("csv", "parquet", "npy")}


def _labels(ds: Dataset, keep: np.ndarray) -> dict[str, np.ndarray]:
    return {
        a: np.asarray(names, dtype=object)[
            np.concatenate([ds.labels_train[a], ds.labels_test[a]])[keep]
        ]
        for a, names in ds.label_names.items()
    }


def export_panel(
    run_dir: str, sha: str, ds: Dataset, method: str, n_comp: int, seed: int, sel: Selection
) -> None:
    """Download buttons: the selection as CSV and Parquet, its latents as .npy."""
    st.subheader("Export")
    if not sel.ids:
        st.caption("Nothing to export: select points on the map or pick a tag in the sidebar.")
        return
    path = Path(run_dir) / "tags.json"
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    data = _export_bytes(run_dir, sha, ds.content_hash, method, n_comp, seed, sel.ids, stamp)
    stem = f"{Path(run_dir).name}-{sel.tag or 'selection'}"
    st.caption(
        f"{len(sel.ids):,} points ({sel.source}): id, split, labels, latent vector, "
        f"{method.upper()} coordinates, reconstruction error, tag."
    )
    cols = st.columns(3)
    mimes = {"csv": "text/csv", "parquet": "application/octet-stream",
             "npy": "application/octet-stream"}  # fmt: skip
    for col, (fmt, mime) in zip(cols, mimes.items(), strict=True):
        col.download_button(
            f"{fmt.upper()}" if fmt != "npy" else "Latents (.npy)", data[fmt],
            file_name=f"{stem}.{fmt}", mime=mime, key=f"lm_export_{fmt}",
        )  # fmt: skip
