"""Session-state keys of the app and :func:`init`, which every page calls first.

Keys are constants here so pages never spell them by hand. Shared keys have no prefix; keys that
belong to one page carry its prefix (``lm_`` for the Latent map). Widget values do not survive a
page switch, so the chosen run lives under the plain (non-widget) key ``RUN_DIR``.
Nothing here is module-level mutable state: the values live in ``st.session_state`` (per browser
session).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import streamlit as st

CHECKPOINTS_ENV = "LSX_CHECKPOINTS"
DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"

# shared (every page)
RUN_DIR = "run_dir"  # str path of the chosen run folder, or None; set by widgets.run_picker
RUN_PICKER = "run_picker_widget"  # the picker widget's own key (copied into RUN_DIR)

# Latent map page (pages/2_latent_map.py)
LM_METHOD = "lm_method"
LM_SEED = "lm_seed"
LM_3D = "lm_3d"
LM_SPLIT = "lm_split"
LM_COLOR = "lm_color"
LM_LATENT_DIM = "lm_latent_dim"
LM_CAP = "lm_cap"
LM_DECODE_ID = "lm_decode_id"
LM_CHART = "lm_chart"  # st.plotly_chart selection state

DEFAULT_CAP = 5000
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        RUN_DIR: None,
        LM_METHOD: "pca",  # instant; UMAP and t-SNE are computed once, then cached on disk
        LM_SEED: 0,
        LM_3D: False,
        LM_SPLIT: "all",
        LM_COLOR: None,  # None: the dataset's primary label
        LM_LATENT_DIM: 0,
        LM_CAP: DEFAULT_CAP,
        LM_DECODE_ID: 0,
    }
)  # read-only: module-level state is shared by every session


def checkpoints_root() -> Path:
    """The folder whose run folders the picker lists.

    Returns
    -------
    Path
        ``$LSX_CHECKPOINTS`` when set, else ``<repo>/checkpoints``.
    """
    env = os.environ.get(CHECKPOINTS_ENV)
    return Path(env).expanduser() if env else DEFAULT_CHECKPOINTS


def init(page_title: str | None = None) -> None:
    """Set the page config and every session key's default (idempotent: ``setdefault``).

    Call it first on every page: under auto-discovery ``app.py`` does not run when another page
    is opened directly (house-style.md section 2).

    Parameters
    ----------
    page_title : str or None
        Shown in the browser tab as "lsx · <page_title>".
    """
    st.set_page_config(
        page_title=f"lsx · {page_title}" if page_title else "lsx",
        page_icon=":material/scatter_plot:",
        layout="wide",
    )
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    from lsx.app.cache import configure_torch  # imports torch; keep this module light

    configure_torch()
