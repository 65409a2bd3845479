"""Plotly builders for the latent map: arrays in, ``go.Figure`` out.

One WebGL trace family per figure: ``Scattergl`` for 2-D, ``Scatter3d`` for 3-D (at most 4
WebGL figures per page: browsers cap WebGL contexts). Every trace carries the sample ids in
``customdata`` so a box or lasso selection maps back to samples whatever the trace order
(streamlit/streamlit#8914).
No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from lsx.errors import DataShapeError

MAX_LEGEND_CATEGORIES = 30  # above this, one trace coloured by code instead of a legend entry each
CONTINUOUS_SCALE = "Viridis"
CATEGORY_SCALE = "Turbo"
HEIGHT_2D, HEIGHT_3D = 620, 680
_HOVER = "%{text}<extra></extra>"


def palette(n: int) -> list[str]:
    """Colours for ``n`` categories.

    Parameters
    ----------
    n : int

    Returns
    -------
    list of n str
        Plotly's 10 qualitative colours for up to 10 categories, Dark24 up to 24, else Alphabet
        (cycled).
    """
    if n <= 10:
        base = qualitative.Plotly
    elif n <= 24:
        base = qualitative.Dark24
    else:
        base = qualitative.Alphabet
    return [base[i % len(base)] for i in range(n)]


def marker_size(n_points: int) -> float:
    """Marker diameter that keeps ``n_points`` readable without a solid blob.

    Parameters
    ----------
    n_points : int

    Returns
    -------
    float
        Pixels: 8 for a few hundred points down to 3 above 10,000.
    """
    if n_points <= 500:
        return 8.0
    if n_points <= 2_000:
        return 6.0
    if n_points <= 10_000:
        return 4.5
    return 3.0


def _check(coords: np.ndarray, ids: np.ndarray, arrays: dict[str, object]) -> np.ndarray:
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise DataShapeError(
            f"coords must have shape (n_points, 2) or (n_points, 3); got {coords.shape}. "
            "Project the latent codes with n_components=2 or 3 first."
        )
    n = len(coords)
    for name, value in {"ids": ids, **arrays}.items():
        if value is not None and len(value) != n:  # type: ignore[arg-type]
            raise DataShapeError(
                f"{name} has {len(value)} entries but coords has {n} points; "  # type: ignore[arg-type]
                "pass one entry per point."
            )
    return coords


def _trace(
    coords: np.ndarray,
    ids: np.ndarray,
    text: np.ndarray | None,
    marker: dict,
    name: str | None = None,
) -> go.Scattergl | go.Scatter3d:
    """One point trace; 2-D is WebGL ``Scattergl``, 3-D is ``Scatter3d``."""
    common = dict(
        mode="markers",
        customdata=ids,
        text=text,
        hovertemplate=_HOVER if text is not None else None,
        marker=marker,
        name=name,
        showlegend=name is not None,
    )
    if coords.shape[1] == 3:
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **common)
    return go.Scattergl(x=coords[:, 0], y=coords[:, 1], **common)


def latent_scatter(
    coords: np.ndarray,
    ids: np.ndarray,
    *,
    color: np.ndarray | None = None,
    categories: Sequence[str] | None = None,
    color_title: str = "",
    hover: Sequence[str] | None = None,
    axis_titles: Sequence[str] | None = None,
    title: str | None = None,
    height: int | None = None,
    uirevision: str | None = None,
) -> go.Figure:
    """Scatter plot of projected latent codes, one point per sample.

    Parameters
    ----------
    coords : ndarray of shape (n_points, 2) or (n_points, 3)
        Projected coordinates; 3 columns give a 3-D ``Scatter3d``, 2 a WebGL ``Scattergl``.
    ids : ndarray of shape (n_points,), int
        Sample ids, stored in every trace's ``customdata`` (selections report them).
    color : ndarray of shape (n_points,) or None
        Integer codes into ``categories`` (categorical colouring, one legend entry per
        category), or floats (continuous colouring with a colour bar), or None (one colour).
    categories : sequence of str or None
        Names of the integer codes in ``color``; given means categorical colouring. With more
        than ``MAX_LEGEND_CATEGORIES`` names, one trace is coloured by code instead.
    color_title : str
        Legend or colour-bar title.
    hover : sequence of str of length n_points, or None
        Hover text of each point (e.g. "id 12 · train #12 · digit 3 · error 0.012").
    axis_titles : sequence of 2 or 3 str, or None
        Axis titles; default "dim 1", "dim 2" (, "dim 3").
    title : str or None
    height : int or None
        Pixels; default 620 for 2-D and 680 for 3-D.
    uirevision : str or None
        Keep zoom and camera across re-renders while this value stays the same.

    Returns
    -------
    go.Figure
        Traces are ``Scattergl`` (2-D) or ``Scatter3d`` (3-D).

    Raises
    ------
    DataShapeError
        ``coords`` is not (n, 2) or (n, 3), or another array has a different length.
    """
    coords = _check(coords, ids, {"color": color, "hover": hover})
    ids = np.asarray(ids)
    text = np.asarray(hover, dtype=object) if hover is not None else None
    size = marker_size(len(coords))
    base_marker = dict(size=size if coords.shape[1] == 2 else max(size - 1.5, 2.0), opacity=0.8)
    traces: list[go.Scattergl | go.Scatter3d] = []
    if color is None:
        traces.append(_trace(coords, ids, text, base_marker))
    elif categories is not None and len(categories) <= MAX_LEGEND_CATEGORIES:
        codes = np.asarray(color).astype(np.int64)
        for code, (name, rgb) in enumerate(zip(categories, palette(len(categories)), strict=True)):
            mask = codes == code
            if mask.any():
                sub_text = text[mask] if text is not None else None
                marker = {**base_marker, "color": rgb}
                traces.append(_trace(coords[mask], ids[mask], sub_text, marker, str(name)))
    else:
        scale = CATEGORY_SCALE if categories is not None else CONTINUOUS_SCALE
        marker = {
            **base_marker,
            "color": np.asarray(color, dtype=np.float32),
            "colorscale": scale,
            "showscale": True,
            "colorbar": dict(title=dict(text=color_title), thickness=14),
        }
        traces.append(_trace(coords, ids, text, marker))
    fig = go.Figure(traces)
    _layout(fig, coords.shape[1], axis_titles, title, height, color_title, uirevision)
    return fig


def _layout(
    fig: go.Figure,
    n_dims: int,
    axis_titles: Sequence[str] | None,
    title: str | None,
    height: int | None,
    legend_title: str,
    uirevision: str | None,
) -> None:
    names = list(axis_titles) if axis_titles else [f"dim {i + 1}" for i in range(n_dims)]
    fig.update_layout(
        template="plotly_white",
        title=dict(text=title) if title else None,
        height=height or (HEIGHT_3D if n_dims == 3 else HEIGHT_2D),
        margin=dict(l=10, r=10, t=60 if title else 36, b=10),  # room for the mode bar
        legend=dict(title=dict(text=legend_title), itemsizing="constant", y=1, yanchor="top"),
        uirevision=uirevision,
        hoverlabel=dict(namelength=-1),
    )
    if n_dims == 3:
        fig.update_layout(
            scene=dict(xaxis_title=names[0], yaxis_title=names[1], zaxis_title=names[2])
        )
    else:
        fig.update_layout(dragmode="select", xaxis_title=names[0], yaxis_title=names[1])
        fig.update_xaxes(zeroline=False)
        fig.update_yaxes(zeroline=False)


def hover_texts(
    ids: np.ndarray,
    splits: Sequence[str],
    split_index: np.ndarray,
    labels: dict[str, Sequence[str]],
    error: np.ndarray | None = None,
) -> list[str]:
    """One hover line per point: id, split and index in it, each label, reconstruction error.

    Parameters
    ----------
    ids : ndarray of shape (n_points,), int
    splits : sequence of str of length n_points
        ``"train"`` or ``"test"`` per point.
    split_index : ndarray of shape (n_points,), int
        Index of the point within its split.
    labels : dict attribute -> sequence of str of length n_points
        Label names per point, one entry per attribute.
    error : ndarray of shape (n_points,) or None
        Reconstruction error (MSE) per point.

    Returns
    -------
    list of str
        ``"id 12 · train #12<br>digit: 3<br>error: 0.0123"`` (Plotly hover markup).
    """
    parts = [
        [
            f"id {i} · {s} #{j}"
            for i, s, j in zip(ids.tolist(), splits, split_index.tolist(), strict=True)
        ]
    ]
    for attr, names in labels.items():
        parts.append([f"{attr}: {name}" for name in names])
    if error is not None:
        parts.append([f"error: {e:.4g}" for e in np.asarray(error).tolist()])
    return ["<br>".join(cols) for cols in zip(*parts, strict=True)]
