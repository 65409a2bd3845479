"""Pure analysis of a model's latent space: arrays (or a model plus arrays) in, arrays, floats or
small frozen dataclasses out. No I/O, no global state, no Streamlit; every seed is an argument.
The on-disk cache of embeddings and projections lives in :mod:`lsx.cache`.
"""

from __future__ import annotations

from lsx.analysis.embedding import (
    Embedding,
    decode_array,
    embed,
    encode_array,
    reconstruct_array,
)
from lsx.analysis.projection import (
    PROJECTIONS,
    ProjectionSpec,
    project,
    resolve_params,
    sample_per_class,
)

__all__ = [
    "PROJECTIONS",
    "Embedding",
    "ProjectionSpec",
    "decode_array",
    "embed",
    "encode_array",
    "project",
    "reconstruct_array",
    "resolve_params",
    "sample_per_class",
]
