"""The binary payload of lsx's WebGL point map, and the selection it sends back.

The map (``lsx/app/assets/pointmap.js``, a Streamlit component) draws every point of a latent
store with WebGL: zoom and pan re-render all points at full resolution, hover finds the nearest
point through a grid index in the browser, and a lasso or box is sent back as a polygon in data
coordinates, so the ids are computed here over every point (:func:`ids_in_polygon`) and the
round trip carries a few hundred bytes, whatever the selection's size.

Payload (little-endian): ``b"LSXM"``, a uint32 header length, the UTF-8 JSON header (``n``,
``extent`` [x0, x1, y0, y1], ``categories`` or null, ``palette``, ``title``, ``vmin``/``vmax``
of continuous values, ``has_values``), zero padding to 4 bytes, then ``x`` and ``y`` as uint16
(0..65535 over the extent: 1/65,535 of the map's width is finer than a pixel at any zoom a map
of 10^6 points is read at), ``colour`` as uint8 (a palette index, or 0..255 over vmin..vmax),
padding to 4, and for continuous colours the float32 values shown on hover. 5 bytes per point
(9 with values): 5 MB at 10^6 points.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from lsx.errors import DataShapeError
from lsx.viz.latent import CONTINUOUS_SCALE, palette

MAGIC = b"LSXM"
Q = 65_535  # coordinate steps over the extent


def _pad4(buf: bytearray) -> None:
    buf.extend(b"\0" * (-len(buf) % 4))


def _continuous_palette(steps: int = 256) -> list[str]:
    """``steps`` hex colours sampled along the continuous scale of the Plotly maps."""
    from plotly.colors import sample_colorscale

    rgb = sample_colorscale(CONTINUOUS_SCALE, np.linspace(0, 1, steps).tolist())
    out = []
    for c in rgb:  # "rgb(r, g, b)"
        r, g, b = (int(round(float(v))) for v in c[c.index("(") + 1 : -1].split(","))
        out.append(f"#{r:02x}{g:02x}{b:02x}")
    return out


def extent(coords: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` of the points with a 2 % margin (a flat axis gets width)."""
    low = np.asarray(coords.min(axis=0), dtype=np.float64)
    high = np.asarray(coords.max(axis=0), dtype=np.float64)
    pad = np.maximum((high - low) * 0.02, 1e-6)
    return (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])


def _quantise(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """x and y as uint16 steps over the extent (what the payload carries), and the extent."""
    box = extent(xy)
    x0, x1, y0, y1 = box
    qx = np.round((xy[:, 0] - x0) / (x1 - x0) * Q).astype("<u2")
    qy = np.round((xy[:, 1] - y0) / (y1 - y0) * Q).astype("<u2")
    return qx, qy, box


def _dequantise(qx: np.ndarray, qy: np.ndarray, box: Sequence[float]) -> np.ndarray:
    x0, x1, y0, y1 = box
    return np.stack([x0 + qx / Q * (x1 - x0), y0 + qy / Q * (y1 - y0)], axis=1)


def encode_points(
    coords: np.ndarray,
    color: np.ndarray | None = None,
    *,
    categories: Sequence[str] | None = None,
    title: str = "",
    extra: dict[str, Any] | None = None,
) -> bytes:
    """Every point of a 2-D map as the WebGL map's payload (row i of ``coords`` is id i).

    Parameters
    ----------
    coords : ndarray of shape (n, 2)
        Finite map coordinates (a memory map is read once).
    color : ndarray of shape (n,), optional
        Integer codes into ``categories``, or floats (continuous; NaN drawn grey).
    categories : sequence of str, optional
        Names of the codes; given means categorical colouring (codes beyond 255 share colours).
    title : str
        What the colour is (shown on hover).
    extra : dict, optional
        More header fields (JSON): ``view`` (an id the map's selections carry back), ``height``,
        ``contours`` (polylines in data coordinates, (m, 2) arrays, drawn over the points; sent
        in the map's unit square, flattened).
    """
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 1 or not np.isfinite(xy).all():
        raise DataShapeError(
            f"The WebGL map needs finite 2-D coordinates of shape (n, 2); got {xy.shape}."
        )
    n = len(xy)
    qx, qy, (x0, x1, y0, y1) = _quantise(xy)
    header: dict[str, Any] = {**(extra or {}), "n": n, "extent": [x0, x1, y0, y1],
                              "title": title, "categories": None, "has_values": False}  # fmt: skip
    values = None
    if color is None:
        idx = np.zeros(n, dtype=np.uint8)
        header["palette"] = palette(1)
    elif categories is not None:
        codes = np.asarray(color).astype(np.int64)
        if codes.shape != (n,):
            raise DataShapeError(f"color has shape {codes.shape}; expected ({n},).")
        header["categories"] = [str(c) for c in categories]
        header["palette"] = palette(max(1, min(len(categories), 256)))
        idx = (codes % 256).astype(np.uint8)
    else:
        values = np.asarray(color, dtype=np.float32)
        if values.shape != (n,):
            raise DataShapeError(f"color has shape {values.shape}; expected ({n},).")
        ok = np.isfinite(values)
        vmin = float(values[ok].min()) if ok.any() else 0.0
        vmax = float(values[ok].max()) if ok.any() else 1.0
        span = vmax - vmin if vmax > vmin else 1.0
        idx = np.clip(np.round((np.nan_to_num(values, nan=vmin) - vmin) / span * 254), 0, 254)
        idx = idx.astype(np.uint8)
        idx[~ok] = 255  # grey
        header.update(vmin=vmin, vmax=vmax, has_values=True,
                      palette=[*_continuous_palette(255), "#bbbbbb"])  # fmt: skip
    if "contours" in header:  # polylines in data coordinates -> the unit square of the map
        header["contours"] = [
            np.round(np.column_stack([(c[:, 0] - x0) / (x1 - x0), (c[:, 1] - y0) / (y1 - y0)]), 5)
            .ravel()
            .tolist()
            for c in header["contours"]
        ]
    head = json.dumps(header, separators=(",", ":")).encode()
    buf = bytearray(MAGIC + struct.pack("<I", len(head)) + head)
    _pad4(buf)
    buf += qx.tobytes() + qy.tobytes() + idx.tobytes()
    _pad4(buf)
    if values is not None:
        buf += values.astype("<f4").tobytes()
    return bytes(buf)


def decode_points(
    payload: bytes,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray | None]:
    """Inverse of :func:`encode_points` (what the browser reads): header, (n, 2) coordinates
    (dequantised), colour indices, values or None."""
    if payload[:4] != MAGIC:
        raise DataShapeError("Not a WebGL map payload (no LSXM magic).")
    (hlen,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8 : 8 + hlen])
    off = 8 + hlen + (-(8 + hlen) % 4)
    n = header["n"]
    qx = np.frombuffer(payload, "<u2", n, off)
    qy = np.frombuffer(payload, "<u2", n, off + 2 * n)
    idx = np.frombuffer(payload, np.uint8, n, off + 4 * n)
    off += 5 * n
    off += -off % 4
    values = np.frombuffer(payload, "<f4", n, off) if header["has_values"] else None
    return header, _dequantise(qx, qy, header["extent"]), idx, values


def quantised(coords: np.ndarray) -> np.ndarray:
    """The coordinates as the browser sees them (selections are tested on these); the same as
    the coordinates :func:`decode_points` gives back from a payload of ``coords``."""
    qx, qy, box = _quantise(np.asarray(coords, dtype=np.float64))
    return _dequantise(qx, qy, box)


def ids_in_polygon(coords: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Row ids of the points inside a polygon (even-odd rule; a box is a 4-vertex polygon).

    ``coords`` (n, 2) in the same data coordinates as the polygon's vertices; read in blocks
    of 2^18 rows, so 10^6 points cost a few tens of milliseconds per vertex pair.
    """
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        return np.zeros(0, dtype=np.int64)
    xs, ys = poly[:, 0], poly[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    out = []
    block = 262_144
    bx0, bx1, by0, by1 = xs.min(), xs.max(), ys.min(), ys.max()
    for start in range(0, len(coords), block):
        c = np.asarray(coords[start : start + block], dtype=np.float64)
        cand = np.flatnonzero(
            (c[:, 0] >= bx0) & (c[:, 0] <= bx1) & (c[:, 1] >= by0) & (c[:, 1] <= by1)
        )
        px, py = c[cand, 0], c[cand, 1]
        inside = np.zeros(len(cand), dtype=bool)
        for k in range(len(poly)):  # one edge at a time: memory stays O(block)
            yi, yk, xi, xk = ys[k], yj[k], xs[k], xj[k]
            crosses = (yi > py) != (yk > py)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = (xk - xi) * (py - yi) / (yk - yi) + xi
            inside ^= crosses & (px < x_at)
        out.append(cand[inside] + start)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
