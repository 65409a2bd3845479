"""Plotly additions for configured clusters: centres and spheres on a latent map, uploaded
points placed on it, and one image's distance profile to every centre. No Streamlit here.

Outlines, centres and uploads are ``Scattergl`` traces in the map's own WebGL figure: SVG traces
would be hidden under the WebGL canvas, and one figure keeps one WebGL context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lsx.analysis.clusters import AttributeLookup, CenterOverlay
from lsx.errors import DataShapeError
from lsx.viz.latent import palette

CENTER_COLOR = "#111111"
QUERY_COLOR = "#d62728"


def add_centers(fig: go.Figure, overlay: CenterOverlay, *, spheres: bool = True) -> go.Figure:
    """Draw configured (or centroid) centres as labelled crosses and, in 2-D, the spheres'
    outlines (solid when exact, dotted when approximate). Returns ``fig`` (changed in place).

    Parameters
    ----------
    fig : go.Figure
        A latent map (``lsx.viz.latent.latent_scatter``).
    overlay : CenterOverlay
        From :func:`lsx.analysis.clusters.center_overlay`, on the same map coordinates.
    spheres : bool
        Draw the outlines too.
    """
    xy = np.asarray(overlay.coords)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3) or len(xy) != len(overlay.names):
        raise DataShapeError(f"Centre coordinates must be (n_classes, 2 or 3); got {xy.shape}.")
    colors = palette(len(overlay.names))
    dash = "solid" if overlay.exact else "dot"
    if spheres:
        for name, line, color in zip(overlay.names, overlay.outlines, colors, strict=False):
            fig.add_trace(
                go.Scattergl(
                    x=line[:, 0],
                    y=line[:, 1],
                    mode="lines",
                    line=dict(color=color, width=1.5, dash=dash),
                    hoverinfo="skip",
                    showlegend=False,
                    name=f"sphere {name}",
                )
            )
    text = [f"centre {n}" for n in overlay.names]
    marker = dict(symbol="x", size=11, color=CENTER_COLOR, line=dict(width=1, color="white"))
    common = dict(
        mode="markers+text",
        text=list(overlay.names),
        textposition="top center",
        hovertext=text,
        hoverinfo="text",
        marker=marker,
        name="centres",
        showlegend=True,
    )
    if xy.shape[1] == 3:
        fig.add_trace(go.Scatter3d(x=xy[:, 0], y=xy[:, 1], z=xy[:, 2], **common))
    else:  # WebGL like the map's points: an SVG trace would be drawn under the WebGL canvas
        fig.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], **common))
    return fig


def add_queries(fig: go.Figure, coords: np.ndarray, names: Sequence[str]) -> go.Figure:
    """Mark uploaded images on a map as red stars labelled with their file names."""
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3) or len(xy) != len(names):
        raise DataShapeError(
            f"Query coordinates must be (n, 2 or 3) with one name each; got {xy.shape} and "
            f"{len(names)} names."
        )
    common = dict(
        mode="markers+text",
        text=[str(n)[:24] for n in names],
        textposition="bottom center",
        hovertext=[f"upload: {n}" for n in names],
        hoverinfo="text",
        marker=dict(symbol="star", size=16, color=QUERY_COLOR, line=dict(width=1, color="black")),
        name="uploads",
    )
    if xy.shape[1] == 3:
        fig.add_trace(go.Scatter3d(x=xy[:, 0], y=xy[:, 1], z=xy[:, 2], **common))
    else:  # WebGL like the map's points: an SVG trace would be drawn under the WebGL canvas
        fig.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], **common))
    return fig


def distance_profile(res: AttributeLookup, i: int, radii: np.ndarray) -> go.Figure:
    """Bar chart of one image's distance to every centre of an attribute, with each sphere's
    radius as a tick: bars under their tick are inside that sphere (SVG, not WebGL)."""
    d = np.asarray(res.distances[i], dtype=np.float64)
    finite = np.isfinite(d)
    names = [n for n, ok in zip(res.class_names, finite, strict=True) if ok]
    colors = [
        "#2ca02c" if j == int(res.pred[i]) else "#9ecae1" for j, ok in enumerate(finite) if ok
    ]
    fig = go.Figure(go.Bar(x=names, y=d[finite], marker_color=colors, name="distance"))
    fig.add_trace(
        go.Scatter(
            x=names,
            y=np.asarray(radii, dtype=np.float64)[finite],
            mode="markers",
            marker=dict(symbol="line-ew-open", size=26, color="black", line=dict(width=2)),
            name="sphere radius",
        )
    )
    fig.update_layout(  # no template: Streamlit's theme styles it, and resolving one costs ~20 ms
        height=240,
        margin=dict(l=10, r=10, t=30, b=10),
        title=dict(text=f"distance to each {res.name} centre", font=dict(size=13)),
        showlegend=False,
        xaxis=dict(type="category"),
    )
    return fig
