"""The anywidget class of the notebook map and its standalone HTML page."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from lsx.analysis import decode_array
from lsx.errors import ConfigError, LsxError
from lsx.notebook.points import Points, color_values, points_frame, positions, thumbnails

ASSETS = Path(__file__).resolve().parent / "assets"
ESM_FILE = ASSETS / "scatter.js"


@functools.cache
def widget_class() -> type:
    """The anywidget class, built on first use so ``import lsx.notebook`` needs no anywidget."""
    try:
        import anywidget
        import traitlets as t
    except ImportError as err:
        raise LsxError(
            f"The notebook widget needs anywidget, which is not installed ({err}). Install it "
            'with: pip install "lsx[notebook]" (or pip install anywidget).'
        ) from err

    class ExploreWidget(anywidget.AnyWidget):
        """The latent map: hover for a thumbnail, drag to lasso or box-select points."""

        _esm = ESM_FILE.read_text(encoding="utf-8")
        xy = t.Bytes(b"").tag(sync=True)  # float32 (n, 2), C order
        ids = t.Bytes(b"").tag(sync=True)  # int32 (n,): the id of each point, for the hover
        values = t.Bytes(b"").tag(sync=True)  # float32 (n,): colour value per point
        color_kind = t.Unicode("category").tag(sync=True)  # "category" or "continuous"
        color_title = t.Unicode("").tag(sync=True)
        categories = t.List(t.Unicode()).tag(sync=True)  # names of the category values
        selected_index = t.List(t.Int()).tag(sync=True)  # positions of the selected points
        mode = t.Unicode("lasso").tag(sync=True)  # "lasso" or "box"
        title = t.Unicode("").tag(sync=True)
        height = t.Int(420).tag(sync=True)

        def __init__(self, points: Points, color: str | int = "label", title: str = "") -> None:
            fits = points.ids.size == 0 or 0 <= points.ids.min() <= points.ids.max() < 2**31
            ids = points.ids.astype(np.int32).tobytes() if fits else b""
            super().__init__(title=title, xy=points.xy.tobytes(), ids=ids)
            self._points = points
            self.color_by(color)
            self.on_msg(self._on_message)

        # --- selection, both ways
        @property
        def selection(self) -> list[int]:
            """The ids of the selected points (set it to a list of ids to select from Python)."""
            return [int(self._points.ids[i]) for i in self.selected_index]

        @selection.setter
        def selection(self, ids: Any) -> None:
            self.selected_index = positions(self._points, ids)

        def selection_frame(self) -> Any:
            """A pandas DataFrame of the selected points (all points when none is selected)."""
            rows = list(self.selected_index) or list(range(len(self._points.ids)))
            return points_frame(self._points, np.asarray(rows, dtype=np.int64))

        def color_by(self, color: str | int) -> None:
            """Colour by ``"label"``, a label attribute, ``"error"`` or a latent dimension."""
            kind, title, values, names = color_values(self._points, color)
            self.set_trait("categories", list(names))
            self.set_trait("color_kind", kind)
            self.set_trait("color_title", title)
            self.values = values.astype(np.float32).tobytes()

        def decode(self, ids: Any = None) -> np.ndarray:
            """Decoded latents of ``ids`` (default: the selection), shape (n, C, H, W)."""
            pts = self._points
            rows = self.selected_index if ids is None else positions(pts, ids)
            if pts.model is None:
                raise ConfigError(
                    "decode() needs the model; this map was opened without one (a latent store "
                    "outside its run folder). Open it with explore(<run folder>) instead."
                )
            if not len(rows):
                raise ConfigError("Nothing to decode: select points first (or pass ids=[...]).")
            return decode_array(pts.model, pts.z[np.asarray(rows)])

        def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
            if isinstance(content, dict) and content.get("type") == "thumbs":
                wanted = [int(i) for i in content.get("index", [])][:64]
                self.send({"type": "thumbs", "images": thumbnails(self._points, wanted)})

    return ExploreWidget


# ------------------------------------------------------------------------------ standalone page


def widget_html(widget: Any, thumbnails_up_to: int = 2000) -> str:
    """A standalone HTML page that draws ``widget`` with its shipped JavaScript, no kernel.

    The page gives the ESM a small stand-in for the anywidget model (``get``, ``set``,
    ``save_changes``, ``on``, ``off``, ``send``); what the widget would send to Python is kept in
    ``window.lsxSent`` and the synced state in ``window.lsxSaved``. Thumbnails of the first
    ``thumbnails_up_to`` points are embedded.

    Returns
    -------
    str
        The page, with the data inline (base64 float32 buffers).
    """
    state = {
        name: getattr(widget, name)
        for name in (
            "color_kind",
            "color_title",
            "categories",
            "selected_index",
            "mode",
            "title",
            "height",
        )
    }
    buffers = {
        name: base64.b64encode(getattr(widget, name)).decode() for name in ("xy", "values", "ids")
    }
    n = widget._points.ids.size
    thumbs = thumbnails(widget._points, list(range(min(n, thumbnails_up_to))))
    page = (ASSETS / "standalone.html").read_text(encoding="utf-8")
    return (
        page.replace("/*STATE*/null", json.dumps(state))
        .replace("/*BUFFERS*/null", json.dumps(buffers))
        .replace("/*THUMBS*/null", json.dumps(thumbs))
        .replace("/*ESM*/", ESM_FILE.read_text(encoding="utf-8").replace("</script", "<\\/script"))
    )
