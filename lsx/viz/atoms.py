"""Figures of the Atoms page: atom/code usage, co-activation and per-class heat maps, sparsity
distributions, the scvae-vs-vqvae usage comparison, atom tiles and segmentation overlays.

Arrays in, ``go.Figure`` or ``uint8`` images out; no Streamlit. All figures are SVG traces
(``Bar``, ``Heatmap``, ``Box``, ``Scatter``), so they use none of the page's WebGL budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from lsx.errors import DataShapeError
from lsx.viz.images import scale_for, to_uint8
from lsx.viz.latent import palette

USED_COLOR, DEAD_COLOR = "#636EFA", "#EF553B"
HEATMAP_SCALE = "Viridis"
ATOM_PX = 56  # about this many pixels per atom tile side


def _vector(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise DataShapeError(f"{name} must be a non-empty 1-D array; got shape {v.shape}.")
    return v


def usage_bars(usage: np.ndarray, *, unit: str = "atom", title: str | None = None) -> go.Figure:
    """Usage of every atom (or code), sorted from most to least used; dead ones marked in red.

    Parameters
    ----------
    usage : ndarray of shape (K,)
        Fraction of latent positions where each atom is active (or each code is chosen).
    unit : str, default="atom"
        "atom" or "code", used in labels.
    title : str or None

    Returns
    -------
    go.Figure
        A ``Bar`` trace of the used ones, and a ``Scatter`` of red crosses at 0 for the dead ones.
    """
    u = _vector(usage, "usage")
    order = np.argsort(-u, kind="stable")
    ranks = np.arange(1, len(u) + 1)
    used = u[order] > 0
    fig = go.Figure()
    fig.add_bar(
        x=ranks[used],
        y=u[order][used],
        customdata=order[used],
        marker_color=USED_COLOR,
        name=f"used {unit}s ({int(used.sum())})",
        hovertemplate=f"{unit} %{{customdata}}<br>active at %{{y:.2%}} of positions<extra></extra>",
    )
    if (~used).any():
        fig.add_scatter(
            x=ranks[~used],
            y=np.zeros(int((~used).sum())),
            customdata=order[~used],
            mode="markers",
            marker={"symbol": "x", "color": DEAD_COLOR, "size": 8},
            name=f"dead {unit}s ({int((~used).sum())})",
            hovertemplate=f"{unit} %{{customdata}}: never used<extra></extra>",
        )
    fig.update_layout(
        title=title,
        xaxis_title=f"{unit}s, most used first (rank)",
        yaxis_title="share of latent positions",
        yaxis_tickformat=".0%",
        legend={"orientation": "h", "y": 1.1},
        height=340,
        margin={"t": 60, "b": 40},
    )
    return fig


def heatmap(
    matrix: np.ndarray,
    *,
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    x_title: str,
    y_title: str,
    title: str | None = None,
    value_name: str = "value",
    percent: bool = True,
) -> go.Figure:
    """A labelled heat map (co-activation of atoms, usage per class).

    Parameters
    ----------
    matrix : ndarray of shape (n_rows, n_cols)
        NaN cells are left blank (e.g. the diagonal of a co-activation matrix).
    x_labels, y_labels : sequences of str of length n_cols and n_rows
    x_title, y_title, title, value_name : str
    percent : bool, default=True
        Show values as percentages.

    Returns
    -------
    go.Figure
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape != (len(y_labels), len(x_labels)):
        raise DataShapeError(
            f"matrix has shape {m.shape} but there are {len(y_labels)} row and {len(x_labels)} "
            "column labels."
        )
    fmt = ".2%" if percent else ".3g"
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=list(x_labels),
            y=list(y_labels),
            colorscale=HEATMAP_SCALE,
            hovertemplate=f"{y_title} %{{y}}<br>{x_title} %{{x}}<br>{value_name} "
            f"%{{z:{fmt}}}<extra></extra>",
            colorbar={"tickformat": ".0%" if percent else None},
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": x_title, "type": "category"},
        yaxis={"title": y_title, "type": "category", "autorange": "reversed"},
        height=420,
        margin={"t": 50, "b": 40},
    )
    return fig


def sparsity_boxes(
    values: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    *,
    value_title: str,
    title: str | None = None,
) -> go.Figure:
    """Distribution of a per-sample value (L0 or L1 per position) per class, as box plots.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
    y : ndarray of shape (n_samples,), int
        Class of each sample, indexing ``class_names``.
    class_names : sequence of str
    value_title : str

    Returns
    -------
    go.Figure
        One ``Box`` per class present, plus "all" first.
    """
    v, y = _vector(values, "values"), np.asarray(y)
    if y.shape != v.shape:
        raise DataShapeError(f"values {v.shape} and y {y.shape} must have the same shape.")
    fig = go.Figure()
    fig.add_box(y=v, name="all", marker_color="#444", boxpoints=False)
    colors = palette(len(class_names))
    for c, name in enumerate(class_names):
        if (y == c).any():
            fig.add_box(y=v[y == c], name=str(name), marker_color=colors[c], boxpoints=False)
    fig.update_layout(
        title=title, yaxis_title=value_title, showlegend=False, height=340, margin={"t": 50}
    )
    return fig


def usage_comparison(curves: Mapping[str, np.ndarray], *, title: str | None = None) -> go.Figure:
    """Share of all activations taken by each atom/code, sorted, one line per model.

    Parameters
    ----------
    curves : mapping legend name -> counts of shape (K,)
        Activation counts (scvae ``AtomStats.counts``, vqvae ``CodeStats.counts``); each curve is
        normalised to sum to 1 and plotted against rank / K, so dictionaries of different sizes
        share the axes. A flat line is even use; a cliff to zero is collapse.

    Returns
    -------
    go.Figure
    """
    fig = go.Figure()
    for (name, counts), color in zip(curves.items(), palette(max(len(curves), 1)), strict=False):
        c = _vector(counts, f"counts of {name}")
        share = np.sort(c)[::-1] / max(c.sum(), 1)
        k = len(share)
        fig.add_scatter(
            x=np.arange(1, k + 1) / k,
            y=share,
            mode="lines+markers",
            line={"shape": "hv", "color": color},
            marker={"size": 4},
            name=name,
            hovertemplate="rank %{x:.0%} of the dictionary<br>share %{y:.2%}<extra></extra>",
        )
    fig.update_layout(
        title=title,
        xaxis_title="atoms/codes sorted by use (rank / K)",
        yaxis_title="share of all activations",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".1%",
        legend={"orientation": "h", "y": 1.12},
        height=360,
        margin={"t": 60},
    )
    return fig


def atom_tiles(images: np.ndarray, *, target_px: int = ATOM_PX) -> list[np.ndarray]:
    """Decoded atoms as upscaled ``uint8`` tiles for ``st.image``.

    Parameters
    ----------
    images : ndarray of shape (K, C, H, W) in [0, 1]

    Returns
    -------
    list of K uint8 arrays
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise DataShapeError(f"images must have shape (K, C, H, W); got {images.shape}.")
    s = scale_for(images.shape[2], target_px)
    return [to_uint8(img, scale=s) for img in images]


NEGATIVE, POSITIVE = np.array([33, 102, 172.0]), np.array([178, 24, 43.0])  # RdBu ends


def effect_tiles(effects: np.ndarray, *, target_px: int = ATOM_PX) -> list[np.ndarray]:
    """Signed atom effects as contrast-normalised RGB tiles: white = no change, red = brighter,
    blue = darker (grey images); colour images show ``0.5 + effect / (2 max|effect|)``.

    Each tile is normalised by its own largest absolute change, so a weak atom is as readable
    as a strong one (its strength is in the caption, not in the contrast).

    Parameters
    ----------
    effects : ndarray of shape (K, C, H, W)
        ``lsx.analysis.atom_gallery.atom_effects``.
    target_px : int
        About this many pixels per tile side.

    Returns
    -------
    list of K uint8 arrays of shape (H', W', 3)
    """
    e = np.asarray(effects, dtype=np.float32)
    if e.ndim != 4 or e.shape[1] not in (1, 3):
        raise DataShapeError(f"effects must have shape (K, C, H, W), C = 1 or 3; got {e.shape}.")
    peak = np.abs(e).reshape(len(e), -1).max(1)  # (K,)
    d = e / np.where(peak > 0, peak, 1.0)[:, None, None, None]  # in [-1, 1]
    s = scale_for(e.shape[2], target_px)
    tiles = []
    for t in d:
        if t.shape[0] == 1:
            a = t[0][..., None]  # (H, W, 1)
            end = np.where(a >= 0, POSITIVE, NEGATIVE)
            rgb = (255.0 + np.abs(a) * (end - 255.0)) / 255.0  # white -> red/blue
        else:
            rgb = 0.5 + 0.5 * t.transpose(1, 2, 0)
        tiles.append(to_uint8(rgb.transpose(2, 0, 1), scale=s))
    return tiles


def patch_strip(patches: np.ndarray, *, target_px: int = ATOM_PX, gap: int = 2) -> np.ndarray:
    """Patches side by side in one ``uint8`` image, ``gap`` white pixels between them.

    Parameters
    ----------
    patches : ndarray of shape (m, C, h, w) in [0, 1]

    Returns
    -------
    ndarray of shape (H', m * W' + (m - 1) * gap[, 3]), uint8
    """
    p = np.asarray(patches)
    if p.ndim != 4 or len(p) == 0:
        raise DataShapeError(f"patches must have shape (m, C, h, w), m >= 1; got {p.shape}.")
    s = scale_for(p.shape[2], target_px)
    tiles = [to_uint8(t, scale=s) for t in p]
    white = np.full((tiles[0].shape[0], gap, *tiles[0].shape[2:]), 255, np.uint8)
    parts = [part for t in tiles for part in (t, white)][:-1]
    return np.concatenate(parts, axis=1)


def atom_card(effect: np.ndarray, strip: np.ndarray, *, gap: int = 6) -> np.ndarray:
    """An effect tile and a patch strip side by side in one RGB ``uint8`` image (white gap,
    both vertically centred on the taller one).

    Parameters
    ----------
    effect : ndarray of shape (h1, w1, 3), uint8
        One of :func:`effect_tiles`.
    strip : ndarray of shape (h2, w2) or (h2, w2, 3), uint8
        :func:`patch_strip`.

    Returns
    -------
    ndarray of shape (max(h1, h2), w1 + gap + w2, 3), uint8
    """
    parts = [np.asarray(effect), np.asarray(strip)]
    parts = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in parts]
    height = max(a.shape[0] for a in parts)
    padded = []
    for a in parts:
        top = (height - a.shape[0]) // 2
        canvas = np.full((height, a.shape[1], 3), 255, np.uint8)
        canvas[top : top + a.shape[0]] = a
        padded.append(canvas)
    return np.concatenate([padded[0], np.full((height, gap, 3), 255, np.uint8), padded[1]], 1)


def label_colors(k: int) -> np.ndarray:
    """(k, 3) uint8 RGB colours of the segments (the categorical palette of the latent map)."""
    return np.array(
        [[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in _hex(palette(k))], np.uint8
    )


def _hex(colors: list[str]) -> list[str]:
    out = []
    for c in colors:
        if c.startswith("rgb"):
            r, g, b = (int(float(v)) for v in c[c.index("(") + 1 : -1].split(",")[:3])
            c = f"#{r:02x}{g:02x}{b:02x}"
        out.append(c)
    return out


def segmentation_overlay(
    image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.45
) -> np.ndarray:
    """The image with its segments painted over it.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) in [0, 1], C = 1 or 3
    labels : ndarray of shape (H, W), int in 0 .. k - 1
    alpha : float, default=0.45
        Opacity of the segment colours (0: the image only, 1: the label map only).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    img = np.asarray(image, dtype=np.float32)
    labels = np.asarray(labels)
    if img.ndim != 3 or img.shape[0] not in (1, 3) or labels.shape != img.shape[1:]:
        raise DataShapeError(
            f"image must be (C, H, W) and labels (H, W) of the same size; got {img.shape} and "
            f"{labels.shape}."
        )
    if not 0.0 <= alpha <= 1.0:
        raise DataShapeError(f"alpha must be in [0, 1]; got {alpha}.")
    rgb = np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img
    base = np.clip(rgb.transpose(1, 2, 0), 0, 1) * 255.0  # (H, W, 3)
    colors = label_colors(int(labels.max()) + 1).astype(np.float32)[labels]  # (H, W, 3)
    return np.rint((1 - alpha) * base + alpha * colors).astype(np.uint8)
