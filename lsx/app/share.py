"""The shareable view of the Latent map: the URL's query parameters hold the view, so a link
reopens it.

Parameters: ``run`` (run name), ``proj`` (pca, umap, tsne), ``seed``, ``dims`` (2 or 3),
``color`` (``label:digit``, ``error``, ``latent:3``, ``tag`` ...), ``split`` (all, train, test),
and the selection: ``tag`` (a tag name) or ``ids`` (at most :data:`MAX_URL_IDS` sample ids,
comma-separated). :func:`read_url` applies them once per browser session, after the run picker
(which reads ``run``) and before the other widgets are drawn; a value that does not exist gives
a message and the default is kept.
:func:`write_url` puts the current view back into the URL after every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from lsx.analysis import PROJECTIONS
from lsx.app import state

MAX_URL_IDS = 50  # longer selections are shared as a tag
URL_SPLITS = ("all", "train", "test")


def _int(text: str, lo: int, hi: int) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and lo <= int(text) < hi else None


def _ids(text: str) -> tuple[int, ...] | None:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or len(parts) > MAX_URL_IDS or not all(p.isdigit() for p in parts):
        return None
    return tuple(dict.fromkeys(int(p) for p in parts))


def read_url() -> list[str]:
    """Apply the URL's view to the session once (call before the run picker and the controls).

    Returns
    -------
    list of str
        One message per parameter that names something that does not exist (the default view
        is kept for it).
    """
    if st.session_state[state.LM_URL_READ]:
        return []
    st.session_state[state.LM_URL_READ] = True
    qp = {k: str(v) for k, v in st.query_params.to_dict().items()}
    bad: list[str] = []
    run_dir = st.session_state[state.RUN_DIR]  # widgets.run_picker resolved ?run=<name>
    if "run" in qp and (run_dir is None or Path(run_dir).name != qp["run"]):
        bad.append(
            f"The link names the run {qp['run'][:80]!r}, which is not in this app's checkpoints "
            "(pick one in the sidebar)."
        )
    if "proj" in qp:
        if qp["proj"] in PROJECTIONS:
            st.session_state[state.LM_METHOD] = qp["proj"]
        else:
            bad.append(f"Unknown projection {qp['proj']!r} in the link; use {sorted(PROJECTIONS)}.")
    if "seed" in qp:
        seed = _int(qp["seed"], 0, 2**32)
        if seed is None:
            bad.append(f"The link's seed {qp['seed']!r} is not an integer in [0, 2**32).")
        else:
            st.session_state[state.LM_SEED] = seed
    if "dims" in qp:
        if qp["dims"] in ("2", "3"):
            st.session_state[state.LM_3D] = qp["dims"] == "3"
        else:
            bad.append(f"The link's dims {qp['dims']!r} must be 2 or 3.")
    if "split" in qp:
        if qp["split"] in URL_SPLITS:
            st.session_state[state.LM_SPLIT] = qp["split"]
        else:
            bad.append(f"Unknown split {qp['split']!r} in the link; use {list(URL_SPLITS)}.")
    bad += _read_color_and_selection(qp)
    return [f"{m} Showing the default instead." for m in bad]


def _read_color_and_selection(qp: dict[str, str]) -> list[str]:
    bad: list[str] = []
    color = qp.get("color")
    if color is not None:  # checked against the run's options by latent_map.map_controls
        kind, _, dim = color.partition(":")
        if kind == "latent" and dim.isdigit():
            st.session_state[state.LM_COLOR] = "latent"
            st.session_state[state.LM_LATENT_DIM] = int(dim)
        else:
            st.session_state[state.LM_COLOR] = color
    if "tag" in qp:  # checked against the run's tags by lsx.app.tags.selection
        st.session_state[state.LM_TAG_SOURCE] = qp["tag"]
    elif "ids" in qp:
        ids = _ids(qp["ids"])
        if ids is None:
            bad.append(
                f"The link's ids {qp['ids'][:60]!r} are not 1 to {MAX_URL_IDS} comma-separated "
                "sample ids."
            )
        else:
            st.session_state[state.LM_PINNED] = ids
    return bad


def write_url(run_dir: str, color: str, tag: str, ids: Sequence[int]) -> None:
    """Put the current view into the URL (replaced only when it changed).

    Parameters
    ----------
    run_dir : str
    color : str
        The colour key in effect (``latent:3`` for a latent dimension).
    tag : str
        The tag used as the selection, or "".
    ids : sequence of int
        The selection's ids (written when there is no tag and at most MAX_URL_IDS of them).
    """
    ss = st.session_state
    view = {
        "run": Path(run_dir).name,
        "proj": str(ss[state.LM_METHOD]),
        "seed": str(int(ss[state.LM_SEED])),
        "dims": "3" if ss[state.LM_3D] else "2",
        "color": color,
        "split": str(ss[state.LM_SPLIT]),
    }
    if tag:
        view["tag"] = tag
    elif 0 < len(ids) <= MAX_URL_IDS:
        view["ids"] = ",".join(str(int(i)) for i in ids)
    current = {k: str(v) for k, v in st.query_params.to_dict().items()}
    if current != view:
        st.query_params.from_dict(view)
