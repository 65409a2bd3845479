"""Plotly builders for the Compare page: two checkpoints' maps side by side in one aligned frame,
the kNN-Jaccard histogram, per-class centroid drift, and input | A | B gallery tiles.

The two maps are two subplots of ONE figure (one set of WebGL contexts) with
linked axes, so zooming one zooms the other. Every trace carries the sample ids in
``customdata``; ``selected`` ids are highlighted in both panels (linked selection). No Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lsx.errors import DataShapeError
from lsx.viz.images import scale_for, side_by_side, to_uint8
from lsx.viz.latent import CONTINUOUS_SCALE, marker_size, palette

_HOVER = "%{text}<extra></extra>"
HEIGHT = 560


def _check(coords_a: np.ndarray, coords_b: np.ndarray, ids: np.ndarray) -> None:
    n = len(ids)
    for name, c in (("coords_a", coords_a), ("coords_b", coords_b)):
        if np.asarray(c).shape != (n, 2):
            raise DataShapeError(f"{name} must have shape ({n}, 2); got {np.asarray(c).shape}.")


def paired_scatter(
    coords_a: np.ndarray,
    coords_b: np.ndarray,
    ids: np.ndarray,
    *,
    color: np.ndarray,
    categories: Sequence[str] | None = None,
    color_title: str = "",
    hover: Sequence[str] | None = None,
    titles: tuple[str, str] = ("A", "B"),
    selected: Sequence[int] = (),
    uirevision: str | None = None,
) -> go.Figure:
    """Two maps of the same samples side by side, B already aligned to A's frame.

    Parameters
    ----------
    coords_a, coords_b : ndarrays of shape (n_points, 2)
    ids : ndarray of shape (n_points,), int
        Sample ids (``customdata`` of every point, in both panels).
    color : ndarray of shape (n_points,)
        Integer codes into ``categories`` (one legend entry per class, toggling both panels),
        or floats (one shared colour bar).
    categories : sequence of str or None
    color_title : str
    hover : sequence of str or None
        Hover text per point (the same in both panels).
    titles : (str, str)
        Panel titles.
    selected : sequence of int
        Ids to highlight in both panels (others are dimmed); empty: nothing dimmed.
    uirevision : str or None

    Returns
    -------
    go.Figure
        ``Scattergl`` traces, panel A in ``xaxis``/``yaxis``, panel B in ``xaxis2``/``yaxis2``.
    """
    _check(coords_a, coords_b, ids)
    ids = np.asarray(ids)
    text = np.asarray(hover, dtype=object) if hover is not None else None
    chosen = np.isin(ids, np.asarray(list(selected), dtype=ids.dtype)) if selected else None
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.04)
    size = marker_size(len(ids))
    if categories is not None:
        codes = np.asarray(color).astype(np.int64)
        groups = [
            (codes == c, str(name), dict(color=rgb))
            for c, (name, rgb) in enumerate(zip(categories, palette(len(categories)), strict=True))
        ]
    else:
        groups = [
            (np.ones(len(ids), bool), None, dict(color=np.asarray(color), coloraxis="coloraxis"))
        ]
    for mask, name, marker in groups:
        if not mask.any():
            continue
        for col, coords in ((1, coords_a), (2, coords_b)):
            sel = np.flatnonzero(chosen[mask]).tolist() if chosen is not None else None
            m = {**marker}
            if "coloraxis" in m:
                m["color"] = m["color"][mask]
            fig.add_trace(
                go.Scattergl(
                    x=coords[mask, 0], y=coords[mask, 1], mode="markers", customdata=ids[mask],
                    text=text[mask] if text is not None else None, hovertemplate=_HOVER,
                    marker=dict(size=size, opacity=0.8, **m), name=name, legendgroup=name,
                    showlegend=name is not None and col == 1, selectedpoints=sel,
                    selected=dict(marker=dict(opacity=1.0)),
                    unselected=dict(marker=dict(opacity=0.08)),
                ),
                row=1, col=col,
            )  # fmt: skip
    fig.update_layout(
        template="plotly_white",
        height=HEIGHT,
        margin=dict(l=10, r=10, t=50, b=10),
        dragmode="select",
        uirevision=uirevision,
        legend=dict(title=dict(text=color_title), itemsizing="constant"),
        coloraxis=dict(colorscale=CONTINUOUS_SCALE, colorbar=dict(title=dict(text=color_title))),
    )
    fig.update_xaxes(matches="x", zeroline=False)  # linked zoom: one frame for both
    fig.update_yaxes(matches="y", zeroline=False)
    return fig


def jaccard_histogram(jaccard: np.ndarray, k: int) -> go.Figure:
    """Histogram of the per-point kNN Jaccard index (SVG bars of width 0.05)."""
    jaccard = np.asarray(jaccard, dtype=np.float64)
    fig = go.Figure(go.Histogram(x=jaccard, xbins=dict(start=0, end=1.0001, size=0.05)))
    fig.update_layout(
        template="plotly_white",
        height=260,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title=f"kNN Jaccard (k = {k})", range=[0, 1.02]),
        yaxis=dict(title="points"),
        bargap=0.05,
    )
    return fig


def drift_bars(class_names: Sequence[str], drift: np.ndarray, jaccard: np.ndarray) -> go.Figure:
    """Per-class centroid drift (bars) and mean kNN Jaccard (markers, right axis)."""
    names = [str(c) for c in class_names]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=names, y=np.asarray(drift), name="centroid drift"))
    fig.add_trace(
        go.Scatter(x=names, y=np.asarray(jaccard), name="mean kNN Jaccard", mode="markers",
                   marker=dict(size=10, symbol="diamond")),
        secondary_y=True,
    )  # fmt: skip
    fig.update_layout(
        template="plotly_white",
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_yaxes(title_text="drift (RMS radius units)", secondary_y=False)
    fig.update_yaxes(title_text="Jaccard", range=[0, 1.05], dtick=0.25, secondary_y=True)
    return fig


def triple_tiles(
    x: np.ndarray, x_a: np.ndarray, x_b: np.ndarray, *, target_px: int = 64
) -> list[np.ndarray]:
    """Input | reconstruction by A | reconstruction by B, one image per sample.

    Parameters
    ----------
    x, x_a, x_b : ndarrays of shape (n, C, H, W) in [0, 1]

    Returns
    -------
    list of n uint8 ndarrays
    """
    x, x_a, x_b = np.asarray(x), np.asarray(x_a), np.asarray(x_b)
    if not (x.shape == x_a.shape == x_b.shape) or x.ndim != 4:
        raise DataShapeError(
            f"Inputs and both reconstructions must share one (n, C, H, W) shape; got {x.shape}, "
            f"{x_a.shape}, {x_b.shape}."
        )
    s = scale_for(x.shape[2], target_px)
    return [
        side_by_side([to_uint8(a, scale=s), to_uint8(b, scale=s), to_uint8(c, scale=s)])
        for a, b, c in zip(x, x_a, x_b, strict=True)
    ]
