"""The only Streamlit code inside lsx: the logic behind ``app.py`` and the pages in ``pages/``.

Imports point one way, from the bottom up:

- ``state``: session keys, ``init()`` and the torch thread setting; imports nothing from lsx.app.
- ``cache``: cached runs, models, datasets, embeddings, projections, the background projection
  worker, a run's latent stores, samples by id.
- ``widgets``: what every page shares (run picker and model card, projection form, notices).
- one module (or a few) per page: ``latent_map`` with ``dataset_map`` and ``store_map`` (and
  ``cluster_space``, shared with ``lookup``), ``lookup`` with ``lookup_store``, ``atoms``,
  ``consistency``, ``manifold``, ``compare`` with ``compare_frame``, ``training`` and ``forms``,
  ``stores``.

Pages stay thin: they read widgets and state, call these modules and render :mod:`lsx.viz`
figures (docs/architecture.md).
"""

from __future__ import annotations
