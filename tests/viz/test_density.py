"""Density raster + per-class sample: counts against numpy's histogram2d, majority colours, PNG
orientation, the figure's selectable sample and its payload size."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from plotly.colors import hex_to_rgb

from lsx.errors import DataShapeError
from lsx.viz.density import density_grid, density_map, density_rgba
from lsx.viz.latent import palette


def points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0.0, 0.0], [5.0, 1.0], [2.0, 6.0]])
    return (centers[y] + rng.normal(size=(n, 2))).astype(np.float32), y


def test_counts_equal_numpy_histogram2d():
    xy, y = points(20_000)
    grid = density_grid(xy, y, bins=50)
    x0, x1, y0, y1 = grid.extent
    hist, _, _ = np.histogram2d(
        xy[:, 0], xy[:, 1], bins=[np.linspace(x0, x1, 51), np.linspace(y0, y1, 51)]
    )
    np.testing.assert_array_equal(grid.counts, hist.T.astype(np.int64))  # [iy, ix]
    assert grid.counts.sum() == grid.n_points == 20_000
    assert x0 < xy[:, 0].min()
    assert x1 > xy[:, 0].max()


def test_majority_class_per_pixel():
    xy = np.array([[0, 0], [0.1, 0.1], [0.05, 0], [10, 10], [9.9, 9.9]], dtype=np.float32)
    labels = np.array([2, 2, 0, 1, 0])
    grid = density_grid(xy, labels, bins=2)
    assert grid.counts.tolist() == [[3, 0], [0, 2]]
    assert grid.majority[0, 0] == 2  # two of three points in the low corner are class 2
    assert grid.majority[1, 1] in (0, 1)  # a tie: either is a majority
    no_labels = density_grid(xy, bins=2)
    assert no_labels.majority is None
    np.testing.assert_array_equal(no_labels.counts, grid.counts)


def test_rgba_is_coloured_by_class_top_row_highest_and_empty_transparent():
    xy = np.array([[0, 0], [0, 0], [10, 10]], dtype=np.float32)
    grid = density_grid(xy, np.array([0, 0, 1]), bins=2)
    colors = palette(2)
    rgba = density_rgba(grid, colors)
    assert rgba.shape == (2, 2, 4)
    assert rgba.dtype == np.uint8
    assert tuple(rgba[1, 0, :3]) == hex_to_rgb(colors[0])  # bottom-left: (0, 0), class 0
    assert tuple(rgba[0, 1, :3]) == hex_to_rgb(colors[1])  # top-right: (10, 10), class 1
    assert rgba[1, 0, 3] == 255  # the densest pixel is opaque
    assert 0 < rgba[0, 1, 3] < 255  # one point: fainter, still visible
    assert rgba[0, 0, 3] == rgba[1, 1, 3] == 0  # empty pixels are transparent


def test_figure_has_the_raster_and_a_selectable_sample():
    xy, y = points(200_000)
    grid = density_grid(xy, y)
    sample = np.sort(np.random.default_rng(1).choice(len(xy), 3000, replace=False))
    fig = density_map(
        grid,
        xy[sample],
        sample,
        sample_codes=y[sample],
        categories=("a", "b", "c"),
        hover=[f"id {i}" for i in sample],
        axis_titles=("UMAP 1", "UMAP 2"),
    )
    assert [t.type for t in fig.data] == ["scattergl"] * 3  # one WebGL figure
    ids = np.sort(np.concatenate([np.asarray(t.customdata) for t in fig.data]))
    np.testing.assert_array_equal(ids, sample)
    for trace, name in zip(fig.data, "abc", strict=True):
        assert trace.name == name
        assert set(y[np.asarray(trace.customdata)]) == {"abc".index(name)}
    (image,) = fig.layout.images
    assert image.source.startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1])))
    assert png.size == (400, 400)
    assert png.mode == "RGBA"
    x0, x1, y0, y1 = grid.extent
    assert (image.x, image.y, image.sizex, image.sizey) == pytest.approx((x0, y1, x1 - x0, y1 - y0))
    assert tuple(fig.layout.xaxis.range) == pytest.approx((x0, x1))
    assert fig.layout.dragmode == "select"
    assert len(fig.to_json()) < 1_000_000  # independent of the 200,000 points


def test_bad_shapes_are_refused():
    with pytest.raises(DataShapeError, match=r"shape \(n_points, 2\)"):
        density_grid(np.zeros((10, 3)))
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        density_grid(np.array([[0.0, np.nan]]))
    with pytest.raises(DataShapeError, match=r"labels must have shape \(2,\)"):
        density_grid(np.zeros((2, 2)), np.zeros(3, int))
