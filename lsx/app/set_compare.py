"""Compare two embedding sets of the same samples (:mod:`lsx.embeddings`): linear CKA, kNN
Jaccard and Procrustes disparity on the vectors themselves (no model, so no reconstruction).

Row i of both sets must be the same sample. Above :data:`CAP` rows the numbers are computed on
the same seeded random rows of both (kNN Jaccard is quadratic without an index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from lsx.analysis.compare import compare_latents
from lsx.app import cache, state
from lsx.embeddings import EMBEDDING_SET_FILE, EmbeddingSet, load_embedding_set
from lsx.errors import DataShapeError
from lsx.viz.compare import drift_bars, jaccard_histogram

CAP = 20_000
MODE = "cmp_mode"
SET_A, SET_B = "cmp_set_a", "cmp_set_b"
MODES = ("checkpoints", "embedding sets")


def mode(has_runs: bool, sets: list[EmbeddingSet]) -> str:
    """Which pair the page compares; asked only when both runs and embedding sets exist."""
    if not sets:
        return MODES[0]
    if not has_runs:
        return MODES[1]
    if st.session_state.get(MODE) not in MODES:
        chosen = st.session_state[state.RUN_DIR]
        st.session_state[MODE] = MODES[int(any(str(e.path) == chosen for e in sets))]
    return str(st.radio("Compare", MODES, key=MODE, horizontal=True))


@st.cache_data(max_entries=8, show_spinner="Comparing the two sets ...")
def _numbers(a: str, b: str, stamp: tuple[int, int], k: int) -> dict:
    ea, eb = load_embedding_set(a), load_embedding_set(b)
    if ea.n != eb.n:
        raise DataShapeError(
            f"{ea.name} has {ea.n:,} rows and {eb.name} {eb.n:,}: CKA and kNN Jaccard compare "
            "the same samples in two spaces, so both sets need one row per sample, in the same "
            "order. Import both from the same samples."
        )
    rows = np.arange(ea.n)
    if ea.n > CAP:
        rows = np.sort(np.random.default_rng(0).choice(ea.n, CAP, replace=False))
    y = np.asarray(ea.labels[ea.store.primary])[rows]
    out = compare_latents(np.asarray(ea.z[rows]), np.asarray(eb.z[rows]), y, k=k)
    return {
        "rows": len(rows),
        "n": ea.n,
        "cka": out.cka,
        "jaccard": out.jaccard,
        "disparity": out.disparity,
        "drift": out.drift.drift,
        "classes": ea.label_names[ea.store.primary],
        "y": y,
    }


def _stamp(emb: EmbeddingSet) -> int:
    """The set's version (its manifest's mtime; -1 when it is gone: never a cached answer)."""
    try:
        return (emb.path / EMBEDDING_SET_FILE).stat().st_mtime_ns
    except OSError:
        return -1


def view(sets: list[EmbeddingSet]) -> None:
    """Two set pickers and the numbers (CKA, mean kNN Jaccard, Procrustes, per-class drift)."""
    by_dir = {str(e.path): e for e in sets}
    chosen = st.session_state[state.RUN_DIR]
    for key in (SET_A, SET_B):
        if st.session_state.get(key) not in by_dir:
            st.session_state[key] = chosen if chosen in by_dir else next(iter(by_dir))
    left, right = st.columns(2)
    label = {d: f"{e.name} ({e.n:,} × {e.dim})" for d, e in by_dir.items()}
    left.selectbox("Embedding set A", list(by_dir), key=SET_A, format_func=label.__getitem__)
    right.selectbox("Embedding set B", list(by_dir), key=SET_B, format_func=label.__getitem__)
    ea, eb = by_dir[st.session_state[SET_A]], by_dir[st.session_state[SET_B]]
    k = int(st.sidebar.slider("Neighbours k", 2, 50, 10, key="cmp_set_k"))
    try:
        got = _numbers(str(ea.path), str(eb.path), (_stamp(ea), _stamp(eb)), k)
    except DataShapeError as err:
        st.error(str(err))
        return
    sampled = (
        f" (the same {got['rows']:,} random rows of both, seed 0)" if got["rows"] < got["n"] else ""
    )
    st.markdown(f"**{got['rows']:,}** of **{got['n']:,}** rows compared{sampled}.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Linear CKA", f"{got['cka']:.3f}", help="1 = the same space up to rotation and scale")
    c2.metric(f"Mean kNN Jaccard (k={k})", f"{float(np.mean(got['jaccard'])):.3f}")
    c3.metric("Procrustes disparity", f"{got['disparity']:.3f}", help="0 = the same shape")
    st.caption(
        "Embedding sets have no model: reconstruction, the aligned maps and the image gallery of "
        "checkpoint comparisons need a decoder or encoder. Open each set on the Latent map."
    )
    left, right = st.columns(2)
    left.plotly_chart(jaccard_histogram(got["jaccard"], k))
    per_class = [
        float(np.mean(got["jaccard"][got["y"] == c])) if (got["y"] == c).any() else float("nan")
        for c in range(len(got["classes"]))
    ]
    right.plotly_chart(drift_bars(got["classes"], got["drift"], per_class))
    if Path(ea.path) == Path(eb.path):
        st.caption("A and B are the same set: every number is at its identity value.")


def sets_of_root() -> list[EmbeddingSet]:
    sets, _ = cache.embedding_sets(state.checkpoints_root())
    return sets
