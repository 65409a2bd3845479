"""The map of a run's dataset (Latent map page; the Lookup page draws it under the uploads): the
points, colours and hover texts of one view, from the cached embeddings and projections of
:mod:`lsx.app.cache`. The map of a latent store is :mod:`lsx.app.store_map`.

Colours come from the labels, the reconstruction error, one latent dimension, the cluster
colourings (:func:`lsx.app.cluster_space.color_values`) or the dominant atom or code
(:func:`lsx.app.atoms.dominant_colors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis import sample_per_class
from lsx.analysis.clusters import COLOR_KINDS
from lsx.app.atoms import dominant_colors
from lsx.app.cache import SPLITS, embedding, projection, run_dataset
from lsx.app.cluster_space import color_values
from lsx.data import Dataset
from lsx.errors import ConfigError
from lsx.viz.latent import hover_texts

AXIS_PREFIX = {"pca": "PC", "umap": "UMAP", "tsne": "t-SNE"}


@dataclass(frozen=True, eq=False)
class MapFrame:
    """Everything the latent-map figure needs, for one set of view settings.

    ``ids`` number train samples first (0 .. n_train - 1), then test samples.
    """

    coords: np.ndarray  # (n_shown, 2 or 3)
    ids: np.ndarray  # (n_shown,) int64
    color: np.ndarray | None  # (n_shown,) codes or floats
    categories: tuple[str, ...] | None
    color_title: str
    hover: list[str]
    axis_titles: tuple[str, ...]
    n_shown: int
    n_total: int
    manifest: dict[str, Any]


def _pool(split: str, n_train: int, n_all: int) -> np.ndarray:
    if split == "train":
        return np.arange(n_train)
    if split == "test":
        return np.arange(n_train, n_all)
    if split == "all":
        return np.arange(n_all)
    raise ConfigError(f"Unknown split {split!r}; use 'train', 'test' or 'all'.")


def _color(
    key: str,
    ds: Dataset,
    z: np.ndarray,
    err: np.ndarray,
    keep: np.ndarray,
    run_dir: str = "",
    sha: str = "",
) -> tuple[np.ndarray, tuple[str, ...] | None, str]:
    """Colour values, category names (None: continuous) and title for a colour key."""
    if key.partition(":")[0] in COLOR_KINDS and key.partition(":")[2] in ds.label_names:
        return color_values(run_dir, sha, ds, z, key, keep)
    if key == "atom":  # dominant atom or code (scvae, vqvae)
        return dominant_colors(run_dir, sha, ds.content_hash, keep)
    if key.startswith("label:") and key[6:] in ds.label_names:
        attr = key[6:]
        codes = np.concatenate([ds.labels_train[attr], ds.labels_test[attr]])[keep]
        return codes, tuple(ds.label_names[attr]), attr
    if key == "error":
        return err[keep], None, "reconstruction MSE"
    if key.startswith("latent:") and key[7:].isdigit() and int(key[7:]) < z.shape[1]:
        dim = int(key[7:])
        return z[keep, dim], None, f"z[{dim}]"
    raise ConfigError(
        f"Unknown colour {key!r}; use 'label:<attribute>' with one of "
        f"{sorted(ds.label_names)}, 'error', or 'latent:<k>' with k in 0..{z.shape[1] - 1}."
    )


@st.cache_data(max_entries=32, show_spinner=False)
def latent_map(
    run_dir: str,
    sha: str,
    data_hash: str,
    method: str,
    n_components: int,
    seed: int,
    split: str,
    color: str,
    cap: int,
) -> MapFrame:
    """The points, colours and hover texts of one latent-map view (per-class sample if capped).

    Parameters
    ----------
    run_dir, sha, data_hash : str
        The run, its weights hash and its dataset's content hash (cache keys).
    method : {"pca", "umap", "tsne"}
    n_components : {2, 3}
    seed : int
        Seed of the projection.
    split : {"train", "test", "all"}
    color : str
        ``"label:<attribute>"``, ``"error"`` or ``"latent:<k>"``.
    cap : int
        Most points to show; above it, ``lsx.analysis.sample_per_class`` keeps each class's
        share (seed 0), never "the first N".

    Returns
    -------
    MapFrame
    """
    ds, _ = run_dataset(run_dir)
    coords, manifest = projection(run_dir, sha, data_hash, method, n_components, seed)
    parts = [embedding(run_dir, sha, data_hash, s) for s in SPLITS]
    z = np.concatenate([p[0] for p in parts])
    err = np.concatenate([p[1] for p in parts])
    n_train = len(ds.x_train)
    pool = _pool(split, n_train, len(z))
    y = np.concatenate([ds.y_train, ds.y_test])
    keep = pool
    if cap < len(pool):
        keep = pool[np.asarray(sample_per_class(y[pool], cap, seed=0), dtype=np.int64)]
    values, categories, title = _color(color, ds, z, err, keep, run_dir, sha)
    in_train = keep < n_train
    labels = {
        attr: np.asarray(names, dtype=object)[
            np.concatenate([ds.labels_train[attr], ds.labels_test[attr]])[keep]
        ]
        for attr, names in ds.label_names.items()
    }
    hover = hover_texts(
        keep,
        np.where(in_train, "train", "test").tolist(),
        np.where(in_train, keep, keep - n_train),
        labels,
        err[keep],
    )
    prefix = AXIS_PREFIX.get(method, method)
    return MapFrame(
        coords=coords[keep],
        ids=keep.astype(np.int64),
        color=values,
        categories=categories,
        color_title=title,
        hover=hover,
        axis_titles=tuple(f"{prefix} {i + 1}" for i in range(n_components)),
        n_shown=len(keep),
        n_total=len(pool),
        manifest=manifest,
    )
