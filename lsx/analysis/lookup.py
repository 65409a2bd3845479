"""Look images up in a latent space: what the Lookup page does for each upload, and
cross-dataset search (query with images of one dataset, retrieve from another encoded by the
same model, no fine-tuning).

The out-of-distribution verdict of an upload comes from :class:`lsx.analysis.ood.OodDetector`
(reconstruction error, distance to the training latents, pixel statistics, for Gaussian
posteriors the posterior's KL, and for a configured ``sae`` space the distance to its spheres,
calibrated together on held-out images) when one is given. The centroid spheres of other kinds
are not a verdict: they only say where the nearest class would be.

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
from lsx.analysis.ood import SIGNALS, OodDetector, ood_signals
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
    detector : OodDetector or None
        The fitted OOD detector of the run (None: the sphere rule alone, as before).
    signals : dict of name -> ndarray, or None
        The detector's signals of these images (:func:`lsx.analysis.ood.ood_signals`).
    """

    z: np.ndarray
    recon_error: np.ndarray
    results: tuple[AttributeLookup, ...]
    neighbour_ids: np.ndarray
    neighbour_dist: np.ndarray
    detector: OodDetector | None = None
    signals: dict[str, np.ndarray] | None = None

    @property
    def sphere_ood(self) -> np.ndarray:
        """(n,) bool: outside every sphere's OOD threshold in at least one attribute."""
        return np.any([r.ood for r in self.results], axis=0)

    @property
    def ood_score(self) -> np.ndarray | None:
        """(n,) the detector's OOD score (None without a detector)."""
        if self.detector is None or self.signals is None:
            return None
        return self.detector.score(self.signals)

    @property
    def ood(self) -> np.ndarray:
        """(n,) bool, the verdict: the detector's flag (for a configured space its sphere
        distance is one of the detector's signals); without a detector, the sphere rule alone."""
        score = self.ood_score
        if score is None:
            return self.sphere_ood
        return score > self.detector.threshold_


def lookup_images(
    model: nn.Module,
    space: ClusterSpace,
    x: np.ndarray,
    z_db: np.ndarray | KnnIndex,
    k: int = 8,
    *,
    detector: OodDetector | None = None,
    z_train: np.ndarray | KnnIndex | None = None,
) -> ImageLookup:
    """Encode images, find their clusters, their ``k`` nearest database points and, with a
    detector, whether they are out of distribution.

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
    detector : OodDetector, optional
        Fitted on held-out images of the run (:func:`lsx.analysis.ood.fit_detector`).
    z_train : ndarray of shape (n_train, latent_numel), or a KnnIndex; needed with ``detector``
        The run's training latents (the detector's ``knn`` signal).
    """
    if detector is not None and z_train is None:
        raise DataShapeError(
            "An OOD detector needs the run's training latents (z_train) for its kNN signal."
        )
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
    signals = None if detector is None else ood_signals(model, x, z_train, space=space, emb=emb)
    return ImageLookup(emb.z, emb.recon_error, lookup(space, emb.z), ids, dist, detector, signals)


def ood_verdict(result: ImageLookup, i: int) -> dict:
    """What the page says first about image ``i``: the verdict and why.

    Returns
    -------
    dict
        ``ood`` (bool), ``score`` and ``threshold`` (floats, None without a detector),
        ``nearest`` (the nearest class per attribute, e.g. ``"digit 2"``), and ``reasons``:
        one sentence per signal beyond the threshold (without a detector: the sphere rule).
    """
    reasons = []
    score = threshold = None
    if result.detector is not None and result.signals is not None:
        det, sig = result.detector, {k: v[i : i + 1] for k, v in result.signals.items()}
        score, threshold = float(det.score(sig)[0]), float(det.threshold_)
        dev, pct, ratio = det.deviations(sig), det.percentiles(sig), det.ratio_to_median(sig)
        for name in det.signals_:
            if dev[name][0] > threshold:
                p, r = float(pct[name][0]), float(ratio[name][0])
                side = f"above {p:.0f} %" if p >= 50 else f"below {100 - p:.0f} %"
                reasons.append(
                    f"{SIGNALS[name][0]} {r:.3g}× the held-out median ({side} of held-out images)"
                )
    elif bool(result.sphere_ood[i]):
        reasons.append("farther than twice the radius from every class's sphere")
    nearest = ", ".join(f"{r.name} {r.class_names[int(r.pred[i])]}" for r in result.results)
    return {
        "ood": bool(result.ood[i]),
        "score": score,
        "threshold": threshold,
        "nearest": nearest,
        "reasons": reasons,
    }


def prediction_rows(result: ImageLookup, i: int) -> list[dict]:
    """One table row per attribute for image ``i``: class, distance, margin, percentile, flags.

    ``OOD`` is the image's verdict (:attr:`ImageLookup.ood`); without a detector, the
    attribute's own sphere flag.
    """
    rows = []
    verdict = bool(result.ood[i]) if result.detector is not None else None
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
                "OOD": bool(res.ood[i]) if verdict is None else verdict,
            }
        )
    return rows


def summary_row(result: ImageLookup, i: int) -> dict:
    """One line per image for the overview table: the OOD verdict first (with the score when a
    detector is given), then every attribute's nearest class, distance and sphere flag."""
    row: dict = {"verdict": "out of distribution" if result.ood[i] else "in distribution"}
    score = result.ood_score
    if score is not None:
        row["OOD score"] = round(float(score[i]), 2)
        row["threshold"] = round(float(result.detector.threshold_), 2)
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
    "ood_verdict",
    "place_by_neighbours",
    "prediction_rows",
    "retrieval_precision",
    "summary_row",
]
