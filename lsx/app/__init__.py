"""The only Streamlit code inside lsx: session state (``state``), cached loaders (``cache``) and
shared widgets (``widgets``) for ``app.py`` and the pages in ``pages/``.

Pages stay thin: they read widgets and state, call :mod:`lsx.app.cache` and render
:mod:`lsx.viz` figures (house-style.md rules 1, 2 and 11).
"""

from __future__ import annotations
