"""Look images up in a latent space: what the Lookup page does for each upload, and
cross-dataset search (papers.md 1.5: query with images of one dataset, retrieve from another
encoded by the same model, no fine-tuning).

Pure: a model (eval mode, shared read-only) plus arrays in; arrays and frozen dataclasses out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import nn

from lsx.analysis.clusters import (
    AttributeLookup,
    ClusterSpace,
    lookup,
    nearest_samples,
    place_by_neighbours,
)
from lsx.analysis.embedding import embed
from lsx.analysis.knn import KnnIndex
from lsx.errors import DataShapeError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's convert("L")


@dataclass(frozen=True, eq=False)
class ImageLookup:
    """Everything the Lookup page shows for a batch of images.

    Attributes
    ----------
    z : ndarray of shape (n, latent_numel)
    recon_error : ndarray of shape (n,)
    results : tuple of AttributeLookup
        Nearest cluster per attribute (see :func:`lsx.analysis.clusters.lookup`).
    neighbour_ids, neighbour_dist : ndarrays of shape (n, k)
        Nearest database rows in latent space.
    """

    z: np.ndarray
    recon_error: np.ndarray
    results: tuple[AttributeLookup, ...]
    neighbour_ids: np.ndarray
    neighbour_dist: np.ndarray

    @property
    def ood(self) -> np.ndarray:
        """(n,) bool: out of distribution in at least one attribute."""
        return np.any([r.ood for r in self.results], axis=0)


def lookup_images(
    model: nn.Module,
    space: ClusterSpace,
    x: np.ndarray,
    z_db: np.ndarray | KnnIndex,
    k: int = 8,
) -> ImageLookup:
    """Encode images, find their clusters and their ``k`` nearest database points.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode.
    space : ClusterSpace
        Calibrated on the model's training latents.
    x : ndarray of shape (n, *input_shape)
    z_db : ndarray of shape (n_db, latent_numel), or a KnnIndex
        Latents of the database to search (e.g. the training split), or an index built once
        over them (:func:`lsx.analysis.knn.build_index`, e.g. over a latent store's ``z``).
    k : int
    """
    emb = embed(model, x)
    if isinstance(z_db, KnnIndex):  # reused across queries: only searched, never rebuilt
        if z_db.dim != emb.z.shape[1]:
            raise DataShapeError(
                f"The index holds {z_db.dim}-dimensional latents but the model encodes to "
                f"{emb.z.shape[1]}; search a store encoded by this checkpoint."
            )
        ids, dist = z_db.query(emb.z, max(1, min(int(k), z_db.n_db)))
    else:
        ids, dist = nearest_samples(emb.z, z_db, k)
    return ImageLookup(emb.z, emb.recon_error, lookup(space, emb.z), ids, dist)


def prediction_rows(result: ImageLookup, i: int) -> list[dict]:
    """One table row per attribute for image ``i``: class, distance, margin, percentile, flags."""
    rows = []
    for res in result.results:
        pct = float(res.percentile[i])
        rows.append(
            {
                "attribute": res.name,
                "predicted": res.class_names[int(res.pred[i])],
                "distance": round(float(res.distance[i]), 4),
                "margin": round(float(res.margin[i]), 4),
                "percentile": None if math.isnan(pct) else round(pct, 1),
                "in sphere": bool(res.in_sphere[i]),
                "OOD": bool(res.ood[i]),
            }
        )
    return rows


def summary_row(result: ImageLookup, i: int) -> dict:
    """One line per image for the overview table: every attribute's class, distance and flags."""
    row = {}
    for res in result.results:
        row[res.name] = res.class_names[int(res.pred[i])]
        row[f"{res.name} distance"] = round(float(res.distance[i]), 4)
    row["in sphere"] = all(bool(r.in_sphere[i]) for r in result.results)
    row["OOD"] = bool(result.ood[i])
    return row


def adapt_images(x: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Images of another dataset as inputs of this model: resized (bilinear) and converted
    between grey and RGB (grey copied to 3 channels; RGB to luma).

    Parameters
    ----------
    x : ndarray of shape (n, C, H, W) in [0, 1], C = 1 or 3
    input_shape : (channels, height, width) of the model

    Returns
    -------
    ndarray of shape (n, *input_shape), float32
    """
    from lsx.data.images import resize_batch

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataShapeError(f"Images must have shape (n, 1 or 3, H, W); got {x.shape}.")
    c, h, w = input_shape
    if x.shape[2:] != (h, w):
        if h != w:
            raise DataShapeError(f"Only square model inputs can be adapted to; got {h}x{w}.")
        x = resize_batch(x, h)
    if x.shape[1] == 1 and c == 3:
        x = np.repeat(x, 3, axis=1)
    elif x.shape[1] == 3 and c == 1:
        x = np.einsum("nchw,c->nhw", x, LUMA)[:, None]
    return np.ascontiguousarray(x, dtype=np.float32)


def cross_dataset_search(
    model: nn.Module, x_query: np.ndarray, x_db: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``x_db`` images of each ``x_query`` image in the model's latent space; both sets
    are adapted to the model's input first (:func:`adapt_images`).

    Returns
    -------
    ids, distances : ndarrays of shape (n_query, k)
    """
    from lsx.analysis.embedding import encode_array

    shape = tuple(model.config.input_shape)
    zq = encode_array(model, adapt_images(x_query, shape))
    zd = encode_array(model, adapt_images(x_db, shape))
    return nearest_samples(zq, zd, k)


def retrieval_precision(y_query: np.ndarray, y_db: np.ndarray, ids: np.ndarray) -> float:
    """Mean share of retrieved database items that share the query's label (precision@k)."""
    y_query, y_db = np.asarray(y_query), np.asarray(y_db)
    return float((y_db[ids] == y_query[:, None]).mean())


__all__ = [
    "ImageLookup",
    "adapt_images",
    "cross_dataset_search",
    "lookup_images",
    "place_by_neighbours",
    "prediction_rows",
    "retrieval_precision",
    "summary_row",
]
