"""Latent stores: a run's encoding of a whole image source, on disk, memory-mapped.

- :mod:`lsx.latents.store`: the store folder, :class:`LatentStore`, :func:`open_store`,
  :func:`list_stores` (read side);
- :mod:`lsx.latents.writer`: :func:`encode_to_store` (``lsx encode``; streamed, resumable);
- :mod:`lsx.latents.projections`: :func:`cached_store_projection`, tiered maps of a store,
  cached in the store's ``projections/`` folder (imported on first use: it loads the projection
  stack).

Formerly ``lsx.latentstore`` (and ``lsx.store.cached_store_projection``); see docs/CHANGELOG.md.
"""

from __future__ import annotations

from typing import Any

from lsx.latents.store import (
    MANIFEST_NAME,
    STORES_DIR,
    LatentStore,
    StaleStoreError,
    list_stores,
    open_store,
    store_dir_for,
    stores_root,
    stores_stamp,
)
from lsx.latents.writer import encode_to_store

_LAZY = {"cached_store_projection", "store_projection_request", "store_identity"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # the projection stack (umap, sklearn, faiss) only when a map is asked for
        from lsx.latents import projections

        return getattr(projections, name)
    raise AttributeError(f"module 'lsx.latents' has no attribute {name!r}")


__all__ = [
    "MANIFEST_NAME",
    "STORES_DIR",
    "LatentStore",
    "StaleStoreError",
    "cached_store_projection",
    "encode_to_store",
    "list_stores",
    "open_store",
    "store_dir_for",
    "stores_root",
    "store_identity",
    "store_projection_request",
    "stores_stamp",
]
