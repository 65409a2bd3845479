"""Figures and images of latent generation: the click grid and paths on the latent map, grids of
decoded images (traversals, interpolation strips, samples) and their PNG bytes.

The click grid: Plotly selections in Streamlit report selected points only, so an empty spot of
the map cannot be selected. An invisible grid of points covering the map (``customdata`` -1, so
galleries ignore it) makes every spot selectable: a small box dragged over an empty spot selects
the grid nodes inside it, whose ``x``/``y`` the selection event carries (checked in Chromium with
Streamlit 1.67: a box works; a single click on an invisible node is not reported).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from lsx.viz.images import to_uint8

GRID_ID = -1  # customdata of the click grid (never a sample id)
GRID_NODES = 48  # per axis
GRID_NAME = "click to decode"
PATH_NAME = "interpolation path"
MARK_NAME = "decoded here"


def click_grid(coords: np.ndarray, n: int = GRID_NODES, margin: float = 0.08) -> np.ndarray:
    """Nodes of a regular ``n x n`` grid over the map's bounding box plus a margin.

    Parameters
    ----------
    coords : ndarray of shape (n_points, 2)

    Returns
    -------
    ndarray of shape (n * n, 2)
    """
    c = np.asarray(coords, dtype=np.float64)
    lo, hi = c.min(axis=0), c.max(axis=0)
    pad = (hi - lo) * margin + 1e-9
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def add_click_grid(fig: go.Figure, nodes: np.ndarray) -> None:
    """Add the invisible, clickable grid (SVG, no WebGL context) to a 2-D map."""
    fig.add_trace(
        go.Scatter(
            x=nodes[:, 0],
            y=nodes[:, 1],
            mode="markers",
            name=GRID_NAME,
            customdata=np.full(len(nodes), GRID_ID),
            marker=dict(size=6, opacity=0.0, color="#888"),
            selected=dict(marker=dict(opacity=0.0)),
            unselected=dict(marker=dict(opacity=0.0)),
            hovertemplate="drag a small box here to decode<br>(%{x:.3g}, %{y:.3g})<extra></extra>",
            showlegend=False,
        )
    )


def add_path(fig: go.Figure, path: np.ndarray, name: str = PATH_NAME) -> None:
    """Draw a path of map positions (an interpolation) with its ends marked A and B."""
    p = np.asarray(path, dtype=np.float64)
    text = ["A", *[""] * (len(p) - 2), "B"]
    fig.add_trace(
        go.Scatter(
            x=p[:, 0], y=p[:, 1], mode="lines+markers+text", name=name, text=text,
            textposition="top center", line=dict(color="black", width=2),
            marker=dict(size=7, color="black", symbol="diamond"), hoverinfo="skip",
        )
    )  # fmt: skip


def add_mark(fig: go.Figure, point: Sequence[float], name: str = MARK_NAME) -> None:
    """Mark one map position (where decode-anywhere decoded)."""
    fig.add_trace(
        go.Scatter(
            x=[point[0]], y=[point[1]], mode="markers", name=name, hoverinfo="skip",
            marker=dict(size=16, color="rgba(0,0,0,0)", symbol="x-thin-open",
                        line=dict(width=3, color="crimson")),
        )
    )  # fmt: skip


def image_grid(images: np.ndarray, *, scale: int = 2, gap: int = 2) -> np.ndarray:
    """Tile decoded images into one picture, one row per leading index.

    Parameters
    ----------
    images : ndarray of shape (rows, cols, C, H, W) or (n, C, H, W) (one row)
        Values in [0, 1].
    scale : int
        Nearest-neighbour upscaling of each image.
    gap : int
        White pixels between tiles.

    Returns
    -------
    ndarray of shape (height, width) or (height, width, 3), uint8
    """
    a = np.asarray(images)
    if a.ndim == 4:
        a = a[None]
    rows, cols = a.shape[:2]
    tiles = [[to_uint8(a[r, c], scale=scale) for c in range(cols)] for r in range(rows)]
    h, w = tiles[0][0].shape[:2]
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap, *tiles[0][0].shape[2:])
    out = np.full(shape, 255, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tiles[r][c]
    return out


def png_bytes(picture: np.ndarray) -> bytes:
    """A uint8 picture (grey or RGB) as PNG bytes (for download buttons and docs/img)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()
