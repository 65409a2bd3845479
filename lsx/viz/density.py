"""Latent maps of 5·10^4-10^6 points: a density raster plus a per-class sample you can select.

One WebGL ``Scattergl`` of 10^6 points is sluggish and its lasso unusable (plotly/plotly.js#1657).
Above ~5·10^4 points (``lsx.app.store_map.SCATTER_MAX``) the map is therefore drawn as:

- a raster of every point: counts on a fixed grid (default 400 x 400), each pixel coloured by
  its majority class with an opacity that grows with the log of its count, embedded as one PNG
  (a layout image: a few hundred kB whatever the number of points, no WebGL);
- on top, a stratified per-class sample (a few thousand points) as ``Scattergl`` traces whose
  ``customdata`` are the sample ids, so box/lasso selection and hover work as on the small map.

:func:`density_grid` does the counting (arrays in, arrays out); :func:`density_map` builds the
figure from a grid and the sample. No Streamlit here.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

from lsx.errors import DataShapeError
from lsx.viz.latent import latent_scatter, palette

DEFAULT_BINS = 400
MIN_ALPHA = 0.2  # a pixel with one point stays visible
SINGLE_COLOR = "#444444"  # no labels: one colour, density as opacity


@dataclass(frozen=True, eq=False)
class DensityGrid:
    """Counts of points per pixel on a regular grid (row 0 = lowest y)."""

    counts: np.ndarray  # (bins, bins) int64, [iy, ix]
    majority: np.ndarray | None  # (bins, bins) int64 class code with most points, or None
    extent: tuple[float, float, float, float]  # x0, x1, y0, y1 of the grid's outer edges
    n_points: int


def _extent(coords: np.ndarray) -> tuple[float, float, float, float]:
    low, high = coords.min(axis=0).astype(np.float64), coords.max(axis=0).astype(np.float64)
    pad = np.maximum((high - low) * 0.02, 1e-6)  # keep edge points inside; a flat axis gets width
    return (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])


def density_grid(
    coords: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    n_classes: int | None = None,
    bins: int = DEFAULT_BINS,
) -> DensityGrid:
    """Count 2-D points per pixel, and the majority class of each pixel.

    Parameters
    ----------
    coords : ndarray of shape (n_points, 2)
        Finite map coordinates (a memmap is fine; read once).
    labels : ndarray of shape (n_points,) of int codes in [0, n_classes), or None
    n_classes : int or None
        Number of classes; default ``labels.max() + 1``.
    bins : int
        Pixels per side.

    Returns
    -------
    DensityGrid
        ``counts.sum() == n_points``; equal to ``np.histogram2d`` on the same edges.

    Raises
    ------
    DataShapeError
        ``coords`` is not (n, 2) with n >= 1 finite rows, or ``labels`` has another length.
    """
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) < 1:
        raise DataShapeError(
            f"A density map needs 2-D coordinates of shape (n_points, 2); got {coords.shape}. "
            "Project with n_components=2."
        )
    if not np.isfinite(coords).all():
        raise DataShapeError("coords hold NaN or Inf values; project finite latents only.")
    x0, x1, y0, y1 = _extent(coords)
    ix = np.clip(((coords[:, 0] - x0) / (x1 - x0) * bins).astype(np.int64), 0, bins - 1)
    iy = np.clip(((coords[:, 1] - y0) / (y1 - y0) * bins).astype(np.int64), 0, bins - 1)
    pixel = iy * bins + ix  # (n_points,)
    if labels is None:
        counts = np.bincount(pixel, minlength=bins * bins).reshape(bins, bins)
        return DensityGrid(counts, None, (x0, x1, y0, y1), len(coords))
    codes = np.asarray(labels).astype(np.int64)
    if codes.shape != (len(coords),):
        raise DataShapeError(
            f"labels must have shape ({len(coords)},), one per point; got {codes.shape}."
        )
    c = int(codes.max()) + 1 if n_classes is None else int(n_classes)
    per_class = np.bincount(pixel * c + codes, minlength=bins * bins * c).reshape(bins * bins, c)
    counts = per_class.sum(axis=1).reshape(bins, bins)
    majority = per_class.argmax(axis=1).reshape(bins, bins)
    return DensityGrid(counts, majority, (x0, x1, y0, y1), len(coords))


def density_rgba(grid: DensityGrid, colors: Sequence[str] | None = None) -> np.ndarray:
    """The grid as an RGBA image, top row = highest y (PNG order).

    Parameters
    ----------
    grid : DensityGrid
    colors : sequence of hex colours, one per class code, or None (one grey)

    Returns
    -------
    ndarray of shape (bins, bins, 4), uint8
        Empty pixels are transparent; alpha grows with log(count) from ``MIN_ALPHA`` to 1.
    """
    counts = grid.counts
    alpha = np.zeros(counts.shape, dtype=np.float64)
    filled = counts > 0
    if filled.any():
        scale = np.log1p(counts[filled]) / np.log1p(counts.max())
        alpha[filled] = MIN_ALPHA + (1 - MIN_ALPHA) * scale
    if grid.majority is None or not colors:
        rgb = np.broadcast_to(np.array(hex_to_rgb(SINGLE_COLOR), np.uint8), (*counts.shape, 3))
    else:
        lut = np.array([hex_to_rgb(c) for c in colors], dtype=np.uint8)  # (n_classes, 3)
        rgb = lut[np.minimum(grid.majority, len(lut) - 1)]
    rgba = np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])
    return np.ascontiguousarray(rgba[::-1])  # grid row 0 is the lowest y; PNG row 0 the top


def png_data_uri(rgba: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an RGBA uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def density_map(
    grid: DensityGrid,
    sample_coords: np.ndarray,
    sample_ids: np.ndarray,
    *,
    sample_codes: np.ndarray | None = None,
    categories: Sequence[str] | None = None,
    color_title: str = "",
    hover: Sequence[str] | None = None,
    axis_titles: Sequence[str] | None = None,
    uirevision: str | None = None,
) -> go.Figure:
    """Density raster of all points with a selectable sample drawn on top.

    Parameters
    ----------
    grid : DensityGrid
        From :func:`density_grid` over every point.
    sample_coords : ndarray of shape (n_sample, 2)
    sample_ids : ndarray of shape (n_sample,), int
        Ids in every trace's ``customdata`` (selections report them).
    sample_codes : ndarray of shape (n_sample,) of int codes (with ``categories``) or floats
        (continuous colour, grey raster), or None
    categories : sequence of str or None
        Class names of the codes; the raster is coloured per class with the same palette.
    color_title, hover, axis_titles, uirevision
        As in :func:`lsx.viz.latent.latent_scatter`.

    Returns
    -------
    go.Figure
        One ``Scattergl`` trace per class of the sample (one WebGL context), the raster as a
        layout image below them, axes fixed to the grid's extent.
    """
    if np.asarray(sample_coords).shape[1:] != (2,):
        raise DataShapeError(
            f"sample_coords must have shape (n_sample, 2); got {np.shape(sample_coords)}."
        )
    colors = palette(len(categories)) if categories else None
    fig = latent_scatter(
        sample_coords,
        sample_ids,
        color=sample_codes,  # codes into categories, or floats (a colour bar)
        categories=categories,
        color_title=color_title,
        hover=hover,
        axis_titles=axis_titles,
        uirevision=uirevision,
    )
    for trace in fig.data:  # small sample markers with an outline, so the raster shows through
        trace.marker.size = 4
        trace.marker.line = dict(width=0.5, color="white")
        trace.marker.opacity = 0.9
    x0, x1, y0, y1 = grid.extent
    fig.add_layout_image(
        source=png_data_uri(density_rgba(grid, colors)),
        xref="x",
        yref="y",
        x=x0,
        y=y1,
        sizex=x1 - x0,
        sizey=y1 - y0,
        sizing="stretch",
        layer="below",
        opacity=1.0,
    )
    fig.update_xaxes(range=[x0, x1], showgrid=False)
    fig.update_yaxes(range=[y0, y1], showgrid=False)
    return fig


CONTOUR_BINS = 80
CONTOUR_LEVELS = 6


def _log_density(grid: DensityGrid, smooth: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.log1p(gaussian_filter(grid.counts.astype(np.float64), smooth))


def _levels(dens: np.ndarray) -> np.ndarray:
    """``CONTOUR_LEVELS`` levels spread evenly inside the log density's range."""
    top = float(dens.max())
    return top * np.arange(1, CONTOUR_LEVELS + 1) / (CONTOUR_LEVELS + 1)


def contour_lines(grid: DensityGrid, *, smooth: float = 1.5) -> list[np.ndarray]:
    """The density contours of :func:`add_density_contours` as polylines in data coordinates
    (each an (m, 2) array), for renderers that draw lines themselves (the WebGL map)."""
    from skimage.measure import find_contours

    dens = _log_density(grid, smooth)
    bins = dens.shape[0]
    x0, x1, y0, y1 = grid.extent
    out = []
    for level in _levels(dens) if dens.max() > 0 else []:
        for rc in find_contours(dens, level):  # (row, col) = (y, x) pixel positions
            xs = x0 + (rc[:, 1] + 0.5) * (x1 - x0) / bins
            ys = y0 + (rc[:, 0] + 0.5) * (y1 - y0) / bins
            out.append(np.stack([xs, ys], axis=1))
    return out


def add_density_contours(
    fig: go.Figure, points: np.ndarray | DensityGrid, *, smooth: float = 1.5
) -> go.Figure:
    """Contour lines of the points' density drawn over a 2-D map (no hover, no selection).

    Parameters
    ----------
    fig : the map (``latent_scatter`` or ``density_map``)
    points : ndarray of shape (n_points, 2), or a DensityGrid of them
        The points whose density is drawn (every point of the map, not only the markers);
        coordinates are binned here into ``CONTOUR_BINS`` per side.
    smooth : float
        Gaussian smoothing of the counts, in pixels.

    Returns
    -------
    go.Figure
        ``fig`` with one ``Contour`` trace of log density, levels spread over its range.
    """
    grid = points if isinstance(points, DensityGrid) else density_grid(points, bins=CONTOUR_BINS)
    dens = _log_density(grid, smooth)
    bins = dens.shape[0]
    x0, x1, y0, y1 = grid.extent
    xs = x0 + (np.arange(bins) + 0.5) * (x1 - x0) / bins  # pixel centres
    ys = y0 + (np.arange(bins) + 0.5) * (y1 - y0) / bins
    levels = _levels(dens)  # the same levels as contour_lines, evenly spaced
    fig.add_trace(
        go.Contour(
            x=xs, y=ys, z=dens, showscale=False, hoverinfo="skip", name="density",
            contours=dict(coloring="none", start=levels[0], end=levels[-1], size=levels[0]),
            line=dict(color="rgba(40, 40, 40, 0.55)", width=1), showlegend=False,
        )
    )  # fmt: skip
    return fig
