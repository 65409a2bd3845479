"""lsx home: which trained autoencoders are here, what does one's latent space look like, and
where to go next?

Run with ``streamlit run app.py``. This file is the ``st.navigation`` router (docs/architecture.md):
the first page is "Home" (:func:`lsx.app.home.render`), the others are the files of
``pages/`` with the URL paths auto-discovery gives them (``/latent_map``, ``/compare`` ...). Each
page still calls ``state.init()`` and ``widgets.run_picker()`` itself, because a fresh server
serves a first visit straight to a page URL before this router has run.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lsx.app import home, state

state.init("Home")
st.navigation(home.pages(home.render, Path(__file__).parent / "pages")).run()
