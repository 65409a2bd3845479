"""The WebGL map's payload (every point, 5 bytes each) and its selections (lsx.viz.pointmap).

Oracle for the polygon test: a brute-force even-odd ray cast written independently here, and
boxes, whose contents are plain comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from lsx.app import pointmap as app_pointmap
from lsx.errors import DataShapeError
from lsx.viz.pointmap import decode_points, encode_points, ids_in_polygon, quantised


def test_categorical_payload_round_trips_every_point():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(10_001, 2)).astype(np.float32) * [3, 0.5]
    codes = rng.integers(0, 7, len(xy))
    payload = encode_points(xy, codes, categories=[f"c{i}" for i in range(7)], title="class",
                            extra={"view": "v1"})  # fmt: skip
    header, got, colour, values = decode_points(payload)
    assert header["n"] == len(xy)
    assert header["view"] == "v1"
    assert header["title"] == "class"
    assert header["categories"] == [f"c{i}" for i in range(7)]
    assert len(header["palette"]) == 7
    assert np.array_equal(colour, codes)
    assert values is None
    x0, x1, y0, y1 = header["extent"]
    step = max(x1 - x0, y1 - y0) / 65_535
    assert np.abs(got - xy).max() <= step  # quantised to 1/65,535 of the extent
    np.testing.assert_allclose(got, quantised(xy))
    assert len(payload) < 5 * len(xy) + 600


def test_continuous_payload_carries_the_values_and_draws_nan_grey():
    v = np.array([0.0, 0.5, 1.0, np.nan], dtype=np.float32)
    header, _, colour, values = decode_points(encode_points(np.eye(4, 2), v, title="score"))
    assert header["has_values"]
    assert header["vmin"] == 0.0
    assert header["vmax"] == 1.0
    assert colour.tolist() == [0, 127, 254, 255]
    assert header["palette"][255] == "#bbbbbb"
    np.testing.assert_array_equal(values, v)


def test_bad_coordinates_are_refused():
    with pytest.raises(DataShapeError, match="finite 2-D"):
        encode_points(np.array([[0.0, np.nan]]))
    with pytest.raises(DataShapeError):
        encode_points(np.zeros((3, 3)))
    with pytest.raises(DataShapeError, match="LSXM"):
        decode_points(b"nope" + bytes(10))


def _ray_cast(pt, poly) -> bool:
    inside = False
    for (xi, yi), (xj, yj) in zip(poly, poly[-1:] + poly[:-1], strict=True):
        if (yi > pt[1]) != (yj > pt[1]) and pt[0] < (xj - xi) * (pt[1] - yi) / (yj - yi) + xi:
            inside = not inside
    return inside


def test_polygon_selection_equals_a_point_by_point_ray_cast():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1, 1, size=(3000, 2))
    star = [(np.cos(a) * r, np.sin(a) * r)
            for a, r in zip(np.linspace(0, 2 * np.pi, 10, endpoint=False), [0.9, 0.3] * 5,
                            strict=True)]  # fmt: skip
    got = set(ids_in_polygon(pts, star).tolist())
    assert got == {i for i, p in enumerate(pts) if _ray_cast(p, star)}
    box = [(-0.5, -0.2), (0.5, -0.2), (0.5, 0.4), (-0.5, 0.4)]
    inside = (np.abs(pts[:, 0]) < 0.5) & (pts[:, 1] > -0.2) & (pts[:, 1] < 0.4)
    assert set(ids_in_polygon(pts, box).tolist()) == set(np.flatnonzero(inside).tolist())
    assert ids_in_polygon(pts, [(0, 0), (1, 1)]).size == 0  # not a polygon


def test_selection_ids_keep_only_this_views_well_formed_selections():
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    box = [[-1, -1], [2, -1], [2, 2], [-1, 2]]
    sel = {"view": "v", "kind": "lasso", "polygon": box}
    assert app_pointmap.selection_ids(sel, pts, "v") == [0, 1]
    assert app_pointmap.selection_ids(sel, pts, "other view") == []
    assert app_pointmap.selection_ids({"view": "v", "kind": "point", "ids": [2]}, pts, "v") == [2]
    assert app_pointmap.selection_ids({"view": "v", "kind": "point", "ids": [9]}, pts, "v") == []
    assert app_pointmap.selection_ids({"view": "v", "polygon": "x"}, pts, "v") == []
    assert app_pointmap.selection_ids({"view": "v", "polygon": [["a", 1]] * 3}, pts, "v") == []
    assert app_pointmap.selection_ids(None, pts, "v") == []


def test_density_contours_travel_in_the_payload_in_the_maps_unit_square():
    from lsx.viz.density import CONTOUR_BINS, contour_lines, density_grid

    rng = np.random.default_rng(2)
    xy = np.concatenate([rng.normal(0, 1, (4000, 2)), rng.normal(8, 1, (4000, 2))])
    lines = contour_lines(density_grid(xy, bins=CONTOUR_BINS))
    assert len(lines) >= 6  # at least one line per level, around both blobs
    every = np.concatenate(lines)
    lo, hi = xy.min(0), xy.max(0)
    assert ((every >= lo - 1) & (every <= hi + 1)).all()  # in data coordinates, on the map
    near_a = np.linalg.norm(every - [0, 0], axis=1) < 4
    near_b = np.linalg.norm(every - [8, 8], axis=1) < 4
    assert near_a.any()
    assert near_b.any()
    assert (near_a | near_b).all()
    header, _, _, _ = decode_points(encode_points(xy, extra={"contours": lines}))
    assert len(header["contours"]) == len(lines)
    flat = np.concatenate([np.asarray(c) for c in header["contours"]])
    assert 0 <= flat.min()
    assert flat.max() <= 1
