"""The latent map in a Jupyter notebook: :func:`explore` and :func:`show_grid`.

    >>> from lsx.notebook import explore, show_grid
    >>> w = explore("demo-vae-mnist5k")            # a run name or folder, model + data, a store
    >>> w                                          # lasso or box-select points in the map
    >>> w.selection                                # the selected ids, back in Python
    >>> w.selection_frame()                        # ids, labels, recon error, x/y, latents
    >>> show_grid(w.decode())                      # the decoded latents of the selection

The widget is an `anywidget <https://anywidget.dev>`_ (``pip install "lsx[notebook]"``) whose
JavaScript, a plain-canvas scatter plot, ships inside lsx (``lsx/notebook/assets/scatter.js``):
no CDN, works offline. Points travel as float32 buffers, so 100,000 points are ~1.2 MB; hover
thumbnails are rendered on demand by the kernel. :func:`widget_html` writes the same widget into a
standalone HTML page (no kernel: selections are kept in the page), which the browser tests use.
Not Streamlit: this module is the top layer of its own (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from lsx.notebook.images import show_grid
from lsx.notebook.sources import explore
from lsx.notebook.widget import widget_class, widget_html


def __getattr__(name: str) -> Any:
    if name == "ExploreWidget":  # the class, for isinstance checks and documentation
        return widget_class()
    raise AttributeError(f"module 'lsx.notebook' has no attribute {name!r}")


__all__ = ["ExploreWidget", "explore", "show_grid", "widget_html"]
