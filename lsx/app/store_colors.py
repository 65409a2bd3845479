"""The colours of a latent store's map (:mod:`lsx.app.store_map`): by label, cluster, outlier
score, reconstruction error, a latent dimension or tag, for every row of the store. Plain
functions, no Streamlit calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsx.analysis.structure import percentile_ranks
from lsx.embeddings import MODEL_KIND
from lsx.errors import ConfigError
from lsx.latents.store import LatentStore
from lsx.tags import tag_labels

STRUCTURE_COLORS = ("cluster", "outlier")  # colours that need the store's structure
COLOR_NAMES = {"cluster": "cluster (k-means in latent space)", "outlier": "outlier score",
               "error": "reconstruction error", "error_pct": "reconstruction error percentile",
               "tag": "tag"}  # fmt: skip


@dataclass(frozen=True, eq=False)
class ColorValues:
    """One colouring of every store row: class codes (``categories`` given) or floats."""

    values: np.ndarray  # (n,) int codes or floats
    categories: tuple[str, ...] | None  # None: continuous, with a colour bar
    title: str


def color_options(store: LatentStore) -> list[str]:
    """``label:<attr>`` per label attribute, ``cluster``, ``outlier``, ``error`` (when the store
    has reconstruction errors: not an embedding set), ``latent`` (one latent dimension) and
    ``tag`` (the store's rows can be tagged)."""
    error = [] if store.manifest.get("model_kind") == MODEL_KIND else ["error", "error_pct"]
    return [f"label:{a}" for a in store.label_names] + [*STRUCTURE_COLORS, *error, "latent", "tag"]


def color_label(option: str) -> str:
    """Human name of a colour option."""
    if option.startswith("label:"):
        return f"label: {option[6:]}"
    return COLOR_NAMES.get(option, "a latent dimension" if option == "latent" else option)


def color_values(
    store: LatentStore, option: str, structure: Any = None, tags: Mapping | None = None
) -> ColorValues:
    """The colour of every row for ``option`` (``latent:<d>`` for dimension d); ``structure``:
    the store's :class:`lsx.latents.structure.StoreStructure`, for ``cluster`` and ``outlier``;
    ``tags`` (name -> row ids) for ``tag``."""
    kind, _, arg = option.partition(":")
    if kind == "tag":
        names = tag_labels(tags or {}, np.arange(store.n))
        categories, codes = np.unique(names.astype(str), return_inverse=True)
        return ColorValues(codes, tuple(categories), "tag")
    if kind == "label":
        return ColorValues(np.asarray(store.labels[arg]), tuple(store.label_names[arg]), arg)
    if kind in STRUCTURE_COLORS:
        if structure is None:
            raise ConfigError(f"Colour {option!r} needs the store's clusters and outlier scores.")
        if kind == "cluster":
            names = tuple(f"cluster {c}" for c in range(structure.k))
            return ColorValues(structure.labels, names, "cluster")
        return ColorValues(structure.outlier, None, "outlier score")
    if kind == "error":
        return ColorValues(np.asarray(store.recon_error), None, "reconstruction error")
    if kind == "error_pct":  # where each error stands among all of them (0-100)
        pct = percentile_ranks(np.asarray(store.recon_error))
        return ColorValues(pct, None, "reconstruction error percentile")
    if kind == "latent" and arg.isdigit() and int(arg) < store.dim:
        return ColorValues(np.asarray(store.z[:, int(arg)]), None, f"latent {arg}")
    raise ConfigError(f"Unknown colour {option!r} for this store.")
