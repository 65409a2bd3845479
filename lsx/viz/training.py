"""Plotly builders for the Train page: loss and metric curves per epoch, and the latent snapshot
animation (one frame per epoch, in one aligned frame). Arrays and records in, ``go.Figure`` out;
SVG traces only (no WebGL contexts). No Streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lsx.errors import DataShapeError
from lsx.viz.latent import palette

SPLIT_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
HEIGHT = 300
TOP_PX = 80  # legend (top left) and Plotly's toolbar (top right) sit above the panel titles
ROW_GAP_PX = 90  # between rows: the x-axis title of one row and the panel titles of the next
# panel titles of loss terms whose key reads like something else (metrics.jsonl keys unchanged)
TERM_TITLES = {
    "in_sphere": "in_sphere: share inside own sphere (not accuracy)",
}


def _numeric(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def loss_terms(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Named loss terms of a metrics history: ``loss`` first, then the others as they appear.

    Parameters
    ----------
    history : sequence of dict
        ``metrics.jsonl`` records (``train_<term>``, ``test_<term>``, ``epoch``, ...).

    Returns
    -------
    list of str
    """
    terms: list[str] = []
    for record in history:
        for key in record:
            for prefix in ("train_", "test_"):
                if key.startswith(prefix) and key[len(prefix) :] not in terms:
                    terms.append(key[len(prefix) :])
    return sorted(terms, key=lambda t: (t != "loss", terms.index(t)))


def other_metrics(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric keys of the history that are neither loss terms nor ``epoch``."""
    keys: list[str] = []
    for record in history:
        for key in record:
            if key == "epoch" or key.startswith(("train_", "test_")) or key in keys:
                continue
            if _numeric(record, key) is not None:
                keys.append(key)
    return keys


def _grid(n: int, titles: Sequence[str]) -> go.Figure:
    """Panels in rows of 3; the legend on its own line at the top left of the figure (container
    coordinates), clear of the panel titles and of the toolbar at the top right."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    height = HEIGHT * rows + TOP_PX
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.08,
        vertical_spacing=min(0.5, ROW_GAP_PX / (height - TOP_PX)) if rows > 1 else 0.0,
    )  # fmt: skip
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=10, r=10, t=TOP_PX, b=10),
        legend=dict(orientation="h", x=0, xanchor="left", y=1, yanchor="top", yref="container"),
    )
    return fig


def loss_curves(history: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One panel per named loss term, train and test per epoch.

    Parameters
    ----------
    history : sequence of dict
        ``metrics.jsonl`` records.

    Returns
    -------
    go.Figure
        Empty panels titled "no epoch finished yet" when ``history`` is empty.
    """
    terms = loss_terms(history) or ["loss"]
    fig = _grid(len(terms), [TERM_TITLES.get(t, t) for t in terms])
    epochs = [r.get("epoch") for r in history]
    for i, term in enumerate(terms):
        for split, color in SPLIT_COLORS.items():
            ys = [_numeric(r, f"{split}_{term}") for r in history]
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=ys, mode="lines+markers", name=split, legendgroup=split,
                    showlegend=i == 0, line=dict(color=color), marker=dict(size=5),
                ),
                row=i // 3 + 1, col=i % 3 + 1,
            )  # fmt: skip
    fig.update_xaxes(title_text="epoch")
    if not history:
        fig.update_layout(title=dict(text="no epoch finished yet"))
    return fig


def metric_curves(history: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """One panel per other numeric metric (seconds per epoch, samples/s, ...); None if none."""
    keys = other_metrics(history)
    if not keys:
        return None
    fig = _grid(len(keys), [k.replace("_", " ") for k in keys])
    epochs = [r.get("epoch") for r in history]
    for i, key in enumerate(keys):
        fig.add_trace(
            go.Scatter(
                x=epochs, y=[_numeric(r, key) for r in history], mode="lines+markers",
                name=key, showlegend=False, marker=dict(size=5),
            ),
            row=i // 3 + 1, col=i % 3 + 1,
        )  # fmt: skip
    fig.update_xaxes(title_text="epoch")
    return fig


def snapshot_animation(
    frames: Sequence[np.ndarray],
    epochs: Sequence[int],
    labels: np.ndarray,
    class_names: Sequence[str],
) -> go.Figure:
    """The latent snapshots as an animation with a slider over epochs (last epoch shown).

    Parameters
    ----------
    frames : sequence of ndarrays of shape (n_points, 2)
        Aligned 2-D maps, one per epoch (``lsx.analysis.compare.align_sequence``).
    epochs : sequence of int
        The epoch of each frame (0 = before training).
    labels : ndarray of shape (n_points,), int
        Class codes of the points.
    class_names : sequence of str
        Names of the codes.

    Returns
    -------
    go.Figure
        Trace 0 holds every point, coloured by class; the frames (named ``"epoch <k>"``) move
        only its coordinates (float32), so a figure of 60 epochs x 1,000 points stays small
        enough to resend every 2 s. One legend entry per class, a play button and a slider.
    """
    if not frames or len(frames) != len(epochs):
        raise DataShapeError(f"Need one epoch per frame; got {len(frames)} and {len(epochs)}.")
    labels = np.asarray(labels, dtype=np.int64)
    if any(np.shape(f) != (len(labels), 2) for f in frames):
        raise DataShapeError(f"Every frame must have shape ({len(labels)}, 2).")
    colors = palette(len(class_names))
    names = [f"epoch {e}" for e in epochs]
    xy = [np.asarray(f, dtype=np.float32) for f in frames]
    points = go.Scatter(
        x=xy[-1][:, 0], y=xy[-1][:, 1], mode="markers", showlegend=False, hoverinfo="text",
        text=[str(class_names[c]) for c in labels],
        marker=dict(size=6, opacity=0.8, color=[colors[c] for c in labels]),
    )  # fmt: skip
    legend = [
        go.Scatter(x=[None], y=[None], mode="markers", name=str(class_names[c]),
                   marker=dict(size=8, color=colors[c]))
        for c in range(len(class_names)) if (labels == c).any()
    ]  # fmt: skip
    fig = go.Figure(
        data=[points, *legend],
        frames=[
            go.Frame(data=[go.Scatter(x=f[:, 0], y=f[:, 1])], traces=[0], name=n)
            for f, n in zip(xy, names, strict=True)
        ],
    )
    reach = max(float(np.quantile(np.abs(f), 0.995)) for f in xy) * 1.15 or 1.0
    step = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    play = dict(frame=dict(duration=400, redraw=False), fromcurrent=False, mode="immediate",
                transition=dict(duration=250))  # fmt: skip
    fig.update_layout(
        template="plotly_white",
        height=520,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(range=[-reach, reach], title="aligned PC 1", zeroline=False),
        yaxis=dict(range=[-reach, reach], title="aligned PC 2", zeroline=False, scaleanchor="x"),
        legend=dict(itemsizing="constant"),
        updatemenus=[
            dict(type="buttons", showactive=False, x=0, y=-0.08, xanchor="left", yanchor="top",
                 buttons=[dict(label="▶ play", method="animate", args=[None, play])])
        ],
        sliders=[
            dict(active=len(frames) - 1, x=0.12, len=0.88, y=-0.04, currentvalue=dict(prefix=""),
                 steps=[dict(label=n, method="animate", args=[[n], step]) for n in names])
        ],
    )  # fmt: skip
    return fig
