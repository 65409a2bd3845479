"""Plotly figure builders and display images: arrays in, ``go.Figure`` or ``uint8`` arrays out.

No Streamlit here (docs/architecture.md); the app in ``app.py``, ``pages/`` and ``lsx.app`` renders
what these functions return.
"""

from __future__ import annotations

from lsx.viz.images import decode_triptych, pair_tiles, side_by_side, to_uint8
from lsx.viz.latent import hover_texts, latent_scatter

__all__ = [
    "decode_triptych",
    "hover_texts",
    "latent_scatter",
    "pair_tiles",
    "side_by_side",
    "to_uint8",
]
