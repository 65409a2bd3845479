"""Plotly builders and image tiles of the Consistency page: arrays in, figures or uint8 out.

- :func:`pair_map`: the evaluation points on a 2-D PCA map (one WebGL trace), with sampled
  (x, t(x)) pairs drawn as segments from the original (dot) to its transform (cross), one colour
  per transform (SVG traces: a few hundred segments);
- :func:`score_distributions`: box plots of a per-pair score per transform, one colour per run;
- :func:`gallery_tiles`: an input and its transforms above their reconstructions.
No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from lsx.errors import DataShapeError
from lsx.viz.images import GALLERY_PX, scale_for, to_uint8
from lsx.viz.latent import palette

TRANSFORM_ORDER = ("rotate", "translate", "scale", "crop", "hflip", "vflip")
HEIGHT = 480
_BACKGROUND = "rgba(150, 150, 150, 0.35)"


def transform_colors(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per transform name (``all`` is always black).

    Parameters
    ----------
    names : sequence of str

    Returns
    -------
    dict name -> CSS colour
    """
    colors = palette(10)
    out = {}
    for i, name in enumerate(names):
        if name == "all":
            out[name] = "#222222"
        elif name in TRANSFORM_ORDER:
            out[name] = colors[TRANSFORM_ORDER.index(name)]
        else:
            out[name] = colors[(len(TRANSFORM_ORDER) + i) % len(colors)]
    return out


def _segments(a: np.ndarray, b: np.ndarray) -> tuple[list, list]:
    """x and y lists of line segments a[i] -> b[i], separated by None gaps."""
    xs: list = []
    ys: list = []
    for (x0, y0), (x1, y1) in zip(a.tolist(), b.tolist(), strict=True):
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def pair_map(
    background: np.ndarray,
    origin: np.ndarray,
    moved: Mapping[str, np.ndarray],
    *,
    ids: np.ndarray | None = None,
    title: str = "",
    axis_titles: tuple[str, str] = ("PC 1", "PC 2"),
) -> go.Figure:
    """Sampled augmented pairs as linked segments on a latent map, colour-coded per transform.

    Parameters
    ----------
    background : ndarray of shape (n, 2)
        Every evaluation point (grey).
    origin : ndarray of shape (n_pairs, 2)
        The sampled points.
    moved : mapping transform name -> ndarray of shape (n_pairs, 2)
        Where each transform takes them.
    ids : ndarray of shape (n_pairs,) or None
        Point ids shown on hover.
    title : str
    axis_titles : (str, str)

    Returns
    -------
    go.Figure
    """
    background, origin = np.asarray(background), np.asarray(origin)
    for name, arr in {"background": background, "origin": origin, **moved}.items():
        if np.ndim(arr) != 2 or np.shape(arr)[1] != 2:
            raise DataShapeError(f"{name} must have shape (n, 2); got {np.shape(arr)}.")
        if name not in ("background", "origin") and len(arr) != len(origin):
            raise DataShapeError(f"{name} has {len(arr)} points but origin has {len(origin)}.")
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=background[:, 0], y=background[:, 1], mode="markers", name="all points",
            marker={"size": 4, "color": _BACKGROUND}, hoverinfo="skip",
        )
    )  # fmt: skip
    hover = [f"id {i}" for i in (ids if ids is not None else range(len(origin)))]
    colors = transform_colors(list(moved))
    for name, arr in moved.items():
        xs, ys = _segments(origin, arr)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=name, legendgroup=name,
                line={"color": colors[name], "width": 1.5}, hoverinfo="skip",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=arr[:, 0], y=arr[:, 1], mode="markers", legendgroup=name, showlegend=False,
                marker={"symbol": "x", "size": 7, "color": colors[name]},
                text=[f"{h} · {name}" for h in hover], hovertemplate="%{text}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=origin[:, 0], y=origin[:, 1], mode="markers", name="original x",
            marker={"size": 7, "color": "white", "line": {"color": "#222", "width": 1.5}},
            text=hover, hovertemplate="%{text} · original<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        title=title, height=HEIGHT, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], legend={"itemsizing": "constant"},
    )  # fmt: skip
    return fig


def score_distributions(
    scores: Mapping[str, Mapping[str, np.ndarray]], *, title: str = "", y_title: str = ""
) -> go.Figure:
    """Box plots of a per-pair score, grouped by transform, one colour per run.

    Parameters
    ----------
    scores : mapping run label -> mapping transform name -> ndarray of shape (n,)
    title, y_title : str

    Returns
    -------
    go.Figure
    """
    fig = go.Figure()
    colors = palette(max(len(scores), 1))
    for color, (run, per_transform) in zip(colors, scores.items(), strict=False):
        xs, ys = [], []
        for name, values in per_transform.items():
            values = np.asarray(values, dtype=np.float64).ravel()
            xs += [name] * len(values)
            ys += values.tolist()
        fig.add_trace(
            go.Box(x=xs, y=ys, name=run, marker_color=color, boxmean=True, boxpoints=False)
        )
    fig.update_layout(
        title=title, boxmode="group", height=HEIGHT - 80, yaxis_title=y_title,
        xaxis_title="transform", margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )  # fmt: skip
    return fig


def gallery_tiles(
    images: np.ndarray, reconstructions: np.ndarray, *, target_px: int = GALLERY_PX
) -> list[np.ndarray]:
    """Each image above its reconstruction, one uint8 tile per image.

    Parameters
    ----------
    images, reconstructions : ndarrays of shape (m, C, H, W) in [0, 1]

    Returns
    -------
    list of m uint8 ndarrays of shape (2 * H * s + 2, W * s) (grey) or (..., 3) (RGB)
    """
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    if images.shape != reconstructions.shape or images.ndim != 4:
        raise DataShapeError(
            f"images and reconstructions must both have shape (m, C, H, W); got {images.shape} "
            f"and {reconstructions.shape}."
        )
    s = scale_for(images.shape[2], target_px)
    tiles = []
    for a, b in zip(images, reconstructions, strict=True):
        top, bottom = to_uint8(a, scale=s), to_uint8(b, scale=s)
        gap = np.full((2, *top.shape[1:]), 255, dtype=np.uint8)
        tiles.append(np.concatenate([top, gap, bottom], axis=0))
    return tiles
