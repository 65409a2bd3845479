"""The WebGL point map on a page: every point of a latent store, hover, zoom, lasso and box.

A Streamlit component (``st.components.v2``) whose JavaScript ships in the package
(``lsx/app/assets/pointmap.js``, no dependencies, nothing fetched); the payload and the
selection's geometry are :mod:`lsx.viz.pointmap`'s. The browser sends back a lasso or box as a
polygon in data coordinates, and the ids are computed here over every point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.viz.pointmap import ids_in_polygon

JS = (Path(__file__).parent / "assets" / "pointmap.js").read_text(encoding="utf-8")
_COMPONENT = st.components.v2.component("lsx_pointmap", js=JS)


def point_map(payload: bytes, key: str) -> dict[str, Any] | None:
    """Draw the map; the last selection the user made on it (None: none yet)."""
    result = _COMPONENT(data=payload, key=key, on_selection_change=lambda: None)
    sel = result.get("selection") if result is not None else None
    return sel if isinstance(sel, dict) else None


def selection_ids(sel: dict[str, Any] | None, coords: np.ndarray, view: str) -> list[int]:
    """Row ids of a selection on the map drawn as ``view`` (another view's selection: none).

    ``coords``: every point's coordinates as the browser drew them (quantised).
    """
    if not sel or sel.get("view") != view:
        return []
    if sel.get("kind") == "point":
        ids = [int(i) for i in sel.get("ids", []) if isinstance(i, int) and 0 <= i < len(coords)]
        return ids[:1]
    polygon = sel.get("polygon")
    if not isinstance(polygon, list) or len(polygon) > 10_000:  # a lasso is ~100 vertices
        return []
    try:
        return ids_in_polygon(coords, polygon).tolist()
    except (TypeError, ValueError):  # not a list of [x, y] numbers: not ours
        return []
