"""Compare page logic (``pages/7_compare.py``): which data two checkpoints can be compared on, the
page's controls, the tables, the aligned maps, the background-fit notice and the gallery. The
cached encodings, numbers and maps are computed in :mod:`lsx.app.compare_frame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lsx.analysis import PROJECTIONS, compare_metrics
from lsx.app import background, cache, state, widgets
from lsx.app.compare_frame import CompareFrame, DataChoice, gallery
from lsx.checkpoint import RunInfo
from lsx.data import DATASETS
from lsx.errors import DataShapeError, LsxError

COLORS = ("class", "jaccard")
RANKED = 20  # rows of the "most changed neighbourhoods" table
GALLERY_CAP = 24


# ------------------------------------------------------------------------------ choosing


def _recorded(info: RunInfo) -> tuple[str | None, int | None]:
    data = info.header.get("data") or {}
    return data.get("spec"), data.get("image_size")


def data_choices(info_a: RunInfo, info_b: RunInfo) -> tuple[list[DataChoice], str | None]:
    """Datasets to compare two runs on, and a message when they were trained on different ones.

    Parameters
    ----------
    info_a, info_b : RunInfo

    Returns
    -------
    choices : list of DataChoice
        One entry (their common dataset) when both were trained on the same data; else A's and
        B's datasets and every built-in of the same input shape. Empty when the input shapes
        differ (no dataset fits both).
    message : str or None
        Why the user has to choose (or why no comparison is possible).
    """
    (spec_a, size_a), (spec_b, size_b) = _recorded(info_a), _recorded(info_b)
    shape_a, shape_b = tuple(info_a.config.input_shape), tuple(info_b.config.input_shape)
    if spec_a is not None and (spec_a, size_a) == (spec_b, size_b):
        return [DataChoice(spec_a, size_a, f"{spec_a} (both were trained on it)")], None
    where = f"**{info_a.name}** was trained on `{spec_a}`, **{info_b.name}** on `{spec_b}`"
    if shape_a != shape_b:
        fmt = "×".join
        return [], (
            f"{where}, and they expect inputs of different shapes ({fmt(map(str, shape_a))} vs "
            f"{fmt(map(str, shape_b))}), so no dataset can be encoded by both. Pick two "
            "checkpoints with the same input shape."
        )
    choices: list[DataChoice] = []
    for spec, size, whose in ((spec_a, size_a, "A"), (spec_b, size_b, "B")):
        if spec and all(c.spec != spec or c.image_size != size for c in choices):
            choices.append(DataChoice(spec, size, f"{spec} ({whose}'s training data)"))
    for name, entry in DATASETS.items():
        if tuple(entry.input_shape) == shape_a and all(c.spec != name for c in choices):
            choices.append(DataChoice(name, None, f"{name} (same input shape)"))
    return choices, (
        f"{where}. Neighbourhoods can only be compared on the same samples: choose a dataset "
        "both can encode (same input shape)."
    )


def default_pair(runs: Sequence[RunInfo], current: str | None) -> tuple[str, str]:
    """A = the sidebar run (else the first); B = another run on the same dataset (else A)."""
    dirs = [str(r.run_dir) for r in runs]
    a = current if current in dirs else dirs[0]
    info_a = runs[dirs.index(a)]
    same = [str(r.run_dir) for r in runs if r.dataset == info_a.dataset and str(r.run_dir) != a]
    return a, (same[0] if same else a)


def pick_pair(runs: Sequence[RunInfo]) -> tuple[RunInfo, RunInfo]:
    """Two selectboxes (A, B); A defaults to the sidebar run. The same run twice is allowed."""
    by_dir = {str(r.run_dir): r for r in runs}
    a0, b0 = default_pair(runs, st.session_state[state.RUN_DIR])
    for key, default in ((state.CMP_A, a0), (state.CMP_B, b0)):
        if st.session_state.get(key) not in by_dir:
            st.session_state[key] = default
    left, right = st.columns(2)

    def label(d: str) -> str:
        return f"{by_dir[d].name} ({by_dir[d].kind}, {by_dir[d].dataset})"

    left.selectbox("Checkpoint A", list(by_dir), key=state.CMP_A, format_func=label)
    right.selectbox("Checkpoint B", list(by_dir), key=state.CMP_B, format_func=label)
    return by_dir[st.session_state[state.CMP_A]], by_dir[st.session_state[state.CMP_B]]


def pick_data(info_a: RunInfo, info_b: RunInfo) -> DataChoice:
    """The dataset to compare on; asks the user when the runs were trained on different ones.

    Raises
    ------
    DataShapeError
        No dataset fits both input shapes.
    """
    choices, message = data_choices(info_a, info_b)
    if not choices:
        raise DataShapeError(message or "No dataset fits both checkpoints.")
    if message is None:
        return choices[0]
    st.warning(message)
    labels = [c.label for c in choices]
    if st.session_state.get(state.CMP_DATA) not in labels:
        st.session_state[state.CMP_DATA] = labels[0]
    picked = st.selectbox("Compare on", labels, key=state.CMP_DATA)
    return choices[labels.index(picked)]


@dataclass(frozen=True)
class Settings:
    method: str
    k: int
    color: str
    cap: int


def controls() -> Settings:
    """Sidebar controls: projection, neighbours k, colouring, point cap."""
    with st.sidebar:
        st.subheader("Compare")
        st.selectbox(
            "Projection", list(PROJECTIONS), key=state.CMP_METHOD, format_func=str.upper,
            help="Each checkpoint's latents are projected, then B is Procrustes-aligned onto A. "
            "UMAP and t-SNE are fitted in the background the first time (PCA is shown meanwhile), "
            "then read from the disk cache.",
        )  # fmt: skip
        st.number_input("Neighbours k", min_value=1, max_value=100, step=1, key=state.CMP_K)
        st.radio(
            "Colour by", COLORS, key=state.CMP_COLOR, horizontal=True,
            format_func=lambda c: "class" if c == "class" else "kNN Jaccard",
        )  # fmt: skip
        st.number_input(
            "Max points", min_value=100, max_value=50_000, step=500, key=state.CMP_CAP,
            help="Above this, a per-class sample (seed 0) is compared, never the first N.",
        )  # fmt: skip
    return Settings(
        str(st.session_state[state.CMP_METHOD]), int(st.session_state[state.CMP_K]),
        str(st.session_state[state.CMP_COLOR]), int(st.session_state[state.CMP_CAP]),
    )  # fmt: skip


# ------------------------------------------------------------------------------ tables


def card_rows(info_a: RunInfo, info_b: RunInfo) -> list[dict[str, str]]:
    """The two model cards as rows: field, A, B, same/differs."""
    a, b = widgets.card_fields(info_a), widgets.card_fields(info_b)
    rows = []
    for key in ("run", "kind", "dataset", "status", "epochs", "config"):
        va, vb = str(a.get(key)), str(b.get(key))
        rows.append({"field": key, "A": va, "B": vb, "": "same" if va == vb else "differs"})
    return rows


def metric_rows(info_a: RunInfo, info_b: RunInfo) -> list[dict[str, Any]]:
    """Every final metric of either run (its ``metrics.jsonl`` last record): A, B, and B − A and
    the relative change only where both log it in the same unit (a VAE's ``recon`` is in nats,
    an AE's is a per-pixel MSE: :func:`lsx.analysis.compare_metrics.metric_rows`)."""
    same_data = _recorded(info_a) == _recorded(info_b)
    return compare_metrics.metric_rows(
        info_a.final_metrics, info_b.final_metrics, info_a.kind, info_b.kind, same_data=same_data
    )


def reconstruction_rows(frame: CompareFrame) -> list[dict[str, Any]]:
    """Per-pixel MSE and PSNR of both checkpoints on the compared samples (common units)."""
    return compare_metrics.reconstruction_rows(frame.err_a, frame.err_b)


def drift_rows(frame: CompareFrame) -> list[dict[str, Any]]:
    """Per class: points, centroid drift, mean kNN Jaccard."""
    rows = []
    for code, n, d in zip(frame.drift.classes, frame.drift.counts, frame.drift.drift, strict=True):
        mask = frame.y == code
        rows.append(
            {
                "class": frame.class_names[int(code)],
                "points": int(n),
                "centroid drift": round(float(d), 6),  # 1e-16 from float error reads as 0
                "mean kNN Jaccard": float(frame.jaccard[mask].mean()),
            }
        )
    return rows


def ranked_rows(frame: CompareFrame, n: int = RANKED) -> list[dict[str, Any]]:
    """The ``n`` points whose neighbourhood changed most (lowest Jaccard first)."""
    return [
        {
            "id": int(frame.ids[i]),
            "class": frame.class_names[int(frame.y[i])],
            "kNN Jaccard": float(frame.jaccard[i]),
            "recon error A": float(frame.err_a[i]),
            "recon error B": float(frame.err_b[i]),
        }
        for i in frame.order[:n]
    ]


# ------------------------------------------------------------------------------ rendering


def numbers(frame: CompareFrame) -> None:
    """The headline numbers: CKA, mean kNN Jaccard, Procrustes disparity, largest drift."""
    cols = st.columns(4)
    cols[0].metric(
        "Linear CKA", f"{frame.cka:.3f}", help="1 = same geometry up to rotation and scale"
    )
    cols[1].metric(f"Mean kNN Jaccard (k={frame.k})", f"{frame.jaccard.mean():.3f}")
    cols[2].metric(
        "Procrustes disparity", f"{frame.disparity:.3f}", help="of the latents; 0 = same shape"
    )
    cols[3].metric("Max centroid drift", f"{frame.drift.drift.max():.3f}")


def wait_for_projections(jobs: dict[str, Future], method: str, n_points: int) -> None:
    """Say which maps are being fitted in the background, with the worker's real progress
    (stage, epochs, an estimate from the measured speed); rerun the page when all are done."""
    background.wait_notice(
        list(jobs.values()),
        f"{method.upper()} is being fitted for {' and '.join(jobs)} in the background; showing "
        f"PCA until then. {n_points:,} points per checkpoint; afterwards it is read from the disk "
        "cache. The maps switch by themselves; the numbers do not depend on the map.",
        label=method.upper(),
        progress=cache.projection_jobs().view,
    )


def manifests(frame: CompareFrame, names: tuple[str, str]) -> None:
    """Both maps' projection manifests (method, parameters, seed, versions, cache), folded."""
    with st.expander("Projection manifests of A and B (method, parameters, seed, versions, cache)"):
        st.json(
            {f"A · {names[0]}": frame.manifests[0], f"B · {names[1]}": frame.manifests[1]},
            expanded=2,
        )


def selection(frame: CompareFrame) -> list[int]:
    """Ids selected in either map (box, lasso, click) or in the "most changed" table."""
    picked = st.session_state.get(state.CMP_RANKED)
    rows = list(picked.selection.rows) if picked is not None else []
    ranked = [r["id"] for r in ranked_rows(frame)]
    from_table = {ranked[i] for i in rows if 0 <= i < len(ranked)}
    from_maps = set(widgets.selected_ids(st.session_state.get(state.CMP_CHART), frame.ids))
    return sorted(from_maps | from_table)


def map_figure(
    frame: CompareFrame, settings: Settings, names: tuple[str, str], label: str, selected: list[int]
):
    """Both maps in one figure, coloured by class or by kNN Jaccard, ``selected`` highlighted."""
    from lsx.viz.compare import paired_scatter

    by_class = settings.color == "class"
    return paired_scatter(
        frame.coords_a, frame.coords_b, frame.ids,
        color=frame.y if by_class else frame.jaccard,
        categories=frame.class_names if by_class else None,
        color_title=label if by_class else "kNN Jaccard",
        hover=frame.hover, selected=selected,
        titles=(f"A · {names[0]}", f"B · {names[1]} (aligned to A)"),
        uirevision=f"{names[0]}|{names[1]}|{frame.method}|{settings.cap}",
    )  # fmt: skip


def show_gallery(
    runs: tuple[str, str], shas: tuple[str, str], choice: DataChoice, selected: list[int]
) -> None:
    """Inputs beside both checkpoints' reconstructions of (at most GALLERY_CAP) selected ids."""
    from lsx.viz.compare import triple_tiles

    if not selected:
        st.caption(
            "Select points in a map, or rows of the ranking below, to compare reconstructions."
        )
        return
    shown = widgets.spread(selected, GALLERY_CAP)
    try:
        x, x_a, x_b = gallery(
            runs[0], shas[0], runs[1], shas[1], choice.spec, choice.image_size, shown
        )
    except LsxError as err:
        st.error(str(err))
        return
    st.caption(f"{len(shown)} of {len(selected)} selected · left: input, middle: A, right: B")
    st.image(triple_tiles(x, x_a, x_b), caption=[f"id {i}" for i in shown], output_format="PNG")
