"""Cluster spaces and decoder-free lookup (docs/methods.md): the core of
:mod:`lsx.analysis.clusters`, which re-exports every public name here.

Decoder-free inference in a latent space with known clusters.

For a configured ``sae`` checkpoint the clusters are its configured centres and spheres: a label
is the nearest configured centre, per label attribute, with no decoder and no classifier. For any
other kind the same functions use class centroids of the training latents (rule ``"centroid"``),
with a sphere that holds 95 % of the class's training points, so the Lookup page works for every
model and says which rule it used.

Pure: arrays (or a model plus arrays) in; arrays, floats or frozen dataclasses out. Each result
carries per attribute: predicted class, distance, margin to the second centre, in-sphere flag,
the distance's percentile among the training points of that class, and an out-of-distribution
flag (farther than ``max(ood_factor * radius, 99th percentile)`` from every centre).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from lsx.errors import DataShapeError

RULE_CONFIGURED = "configured"
RULE_CENTROID = "centroid"
RULES = {
    RULE_CONFIGURED: "nearest configured centre (sae latent-space configuration)",
    RULE_CENTROID: "nearest class centroid of the training latents (no configuration: fallback)",
}
CENTROID_RADIUS_QUANTILE = 0.95  # centroid rule: the sphere holds 95 % of a class's train points
OOD_FACTOR = 2.0  # OOD: farther than max(2 * radius, 99th percentile) from every centre
OOD_QUANTILE = 0.99
GROUP_CAP = 400  # grouping ratio: at most this many points per group (seeded sample)
# Latent-map colourings, key "<kind>:<attribute>" (lsx.app.latent_map.color_options)
COLOR_KINDS = {
    "predicted": "predicted cluster",
    "in_sphere": "inside its predicted sphere",
    "correct": "nearest centre is right",
}
STABILITY_NAME = "stability.json"  # in a run folder: seeds study written by bench/sae.py --save


@dataclass(frozen=True, eq=False)
class AttributeSpace:
    """The clusters of one label attribute.

    Attributes
    ----------
    name : str
    class_names : tuple of str
    lo, hi : int
        Columns of the configured vector (:meth:`ClusterSpace.vectors`) this attribute uses.
    centers : ndarray of shape (n_classes, hi - lo)
    radii : ndarray of shape (n_classes,)
    active : ndarray of shape (n_classes,), bool
        Classes that take part in predictions (held-out or absent classes do not).
    train_dist : tuple of n_classes sorted ndarrays
        Distances of the class's training points to its centre (for percentiles).
    ood_threshold : ndarray of shape (n_classes,)
    """

    name: str
    class_names: tuple[str, ...]
    lo: int
    hi: int
    centers: np.ndarray
    radii: np.ndarray
    active: np.ndarray
    train_dist: tuple[np.ndarray, ...] = ()
    ood_threshold: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ClusterSpace:
    """Clusters of every label attribute, and how to get their vectors from flat latents.

    ``pool`` is ``(channels, positions)`` when a configured spatial latent is averaged over
    positions before the centres apply, else None.
    """

    rule: str
    attributes: tuple[AttributeSpace, ...]
    pool: tuple[int, int] | None = None

    @property
    def description(self) -> str:
        return RULES[self.rule]

    def vectors(self, z: np.ndarray) -> np.ndarray:
        """Flat latents (n, latent_numel) -> the vectors the centres live in, float64."""
        z = _as_2d(z, "z")
        if self.pool is not None:
            c, p = self.pool
            if z.shape[1] != c * p:
                raise DataShapeError(f"z has {z.shape[1]} columns; this space expects {c * p}.")
            return z.reshape(len(z), c, p).mean(axis=2)
        return z

    def attribute(self, name: str) -> tuple[int, AttributeSpace]:
        for a, space in enumerate(self.attributes):
            if space.name == name:
                return a, space
        known = ", ".join(s.name for s in self.attributes)
        raise DataShapeError(f"No label attribute {name!r}; this space has: {known}.")


@dataclass(frozen=True, eq=False)
class AttributeLookup:
    """Per-point results for one attribute; every array has one entry per point."""

    name: str
    class_names: tuple[str, ...]
    pred: np.ndarray  # (n,) int
    distance: np.ndarray  # (n,) to the predicted centre
    margin: np.ndarray  # (n,) second-nearest distance minus nearest
    in_sphere: np.ndarray  # (n,) bool
    percentile: np.ndarray  # (n,) 0..100, NaN when the class has no training points
    ood: np.ndarray  # (n,) bool
    distances: np.ndarray  # (n, n_classes), inf for inactive classes


def _as_2d(z: np.ndarray, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise DataShapeError(f"{name} must be 2-D (n_samples, n_features); got shape {z.shape}.")
    if not np.isfinite(z).all():
        raise DataShapeError(f"{name} has NaN or Inf values; encode finite images only.")
    return z


def _label_columns(labels: Mapping[str, np.ndarray], space: ClusterSpace, n: int) -> list:
    cols = []
    for attr in space.attributes:
        if attr.name not in labels:
            raise DataShapeError(f"labels have no attribute {attr.name!r}; got {sorted(labels)}.")
        y = np.asarray(labels[attr.name]).astype(np.int64)
        if y.shape != (n,):
            raise DataShapeError(f"labels[{attr.name!r}] has shape {y.shape}; expected ({n},).")
        cols.append(y)
    return cols


# ------------------------------------------------------------------------------ building


def is_configured(model: nn.Module) -> bool:
    """True for a model with configured centres (the ``sae`` kind)."""
    return callable(getattr(model, "centers", None)) and hasattr(model, "slices")


def configured_space(model: nn.Module, label_names: Mapping[str, Sequence[str]]) -> ClusterSpace:
    """The configured centres and radii of an ``sae`` model, named after the dataset's labels.

    Raises
    ------
    DataShapeError
        The model is not configured, or its class counts differ from the dataset's.
    """
    if not is_configured(model):
        raise DataShapeError(f"A {model.config.kind} model has no configured centres.")
    cfg = model.config
    counts = tuple(len(v) for v in label_names.values())
    if counts != tuple(cfg.n_classes):
        raise DataShapeError(
            f"The checkpoint is configured for class counts {list(cfg.n_classes)} but the "
            f"dataset has {list(counts)} ({', '.join(label_names)}); use the run's own dataset."
        )
    attrs = []
    for a, (name, names) in enumerate(label_names.items()):
        lo, hi = model.slices[a]
        active = np.ones(len(names), dtype=bool)
        if a == 0:
            active[list(cfg.held_out)] = False
        attrs.append(
            AttributeSpace(
                name=name,
                class_names=tuple(names),
                lo=lo,
                hi=hi,
                centers=model.centers(a).detach().cpu().double().numpy(),
                radii=model.radii(a).detach().cpu().double().numpy(),
                active=active,
            )
        )
    pool = None
    if len(model.latent_shape) == 3:
        c, h, w = model.latent_shape
        pool = (c, h * w)
    return ClusterSpace(RULE_CONFIGURED, tuple(attrs), pool)


def centroid_space(
    z_train: np.ndarray,
    labels_train: Mapping[str, np.ndarray],
    label_names: Mapping[str, Sequence[str]],
) -> ClusterSpace:
    """Class centroids of the training latents (any kind), radius = 95th percentile distance."""
    z = _as_2d(z_train, "z_train")
    attrs = []
    for name, names in label_names.items():
        y = np.asarray(labels_train[name]).astype(np.int64)
        k = len(names)
        centers = np.zeros((k, z.shape[1]))
        radii = np.zeros(k)
        active = np.zeros(k, dtype=bool)
        for c in range(k):
            members = z[y == c]
            if len(members):
                centers[c] = members.mean(axis=0)
                dist = np.linalg.norm(members - centers[c], axis=1)
                radii[c] = float(np.quantile(dist, CENTROID_RADIUS_QUANTILE))
                active[c] = True
        attrs.append(AttributeSpace(name, tuple(names), 0, z.shape[1], centers, radii, active))
    return ClusterSpace(RULE_CENTROID, tuple(attrs))


def calibrate(
    space: ClusterSpace,
    z_train: np.ndarray,
    labels_train: Mapping[str, np.ndarray],
    *,
    ood_factor: float = OOD_FACTOR,
) -> ClusterSpace:
    """Add each class's training distances (percentiles) and OOD thresholds to ``space``."""
    v = space.vectors(z_train)
    cols = _label_columns(labels_train, space, len(v))
    attrs = []
    for attr, y in zip(space.attributes, cols, strict=True):
        va = v[:, attr.lo : attr.hi]
        dists, thr = [], np.zeros(len(attr.centers))
        for c in range(len(attr.centers)):
            d = np.sort(np.linalg.norm(va[y == c] - attr.centers[c], axis=1))
            dists.append(d)
            q = float(np.quantile(d, OOD_QUANTILE)) if len(d) else 0.0
            thr[c] = max(ood_factor * attr.radii[c], q)
        attrs.append(replace(attr, train_dist=tuple(dists), ood_threshold=thr))
    return replace(space, attributes=tuple(attrs))


def cluster_space(
    model: nn.Module,
    z_train: np.ndarray,
    labels_train: Mapping[str, np.ndarray],
    label_names: Mapping[str, Sequence[str]],
) -> ClusterSpace:
    """The model's configured space when it has one, else the centroid space; calibrated.

    Parameters
    ----------
    model : nn.Module
        An lsx model.
    z_train : ndarray of shape (n_train, latent_numel)
        Flat training latents (``lsx.analysis.encode_array``).
    labels_train : mapping attribute -> ndarray of shape (n_train,)
    label_names : mapping attribute -> class names

    Returns
    -------
    ClusterSpace
        ``rule`` says which rule was used (``RULES[rule]`` in words).
    """
    if is_configured(model):
        space = configured_space(model, label_names)
    else:
        space = centroid_space(z_train, labels_train, label_names)
    return calibrate(space, z_train, labels_train)


# ------------------------------------------------------------------------------ lookup


def lookup(space: ClusterSpace, z: np.ndarray) -> tuple[AttributeLookup, ...]:
    """Nearest cluster of each point, per attribute, with distance, margin, in-sphere flag,
    training percentile and OOD flag.

    Parameters
    ----------
    space : ClusterSpace
        Calibrated (:func:`cluster_space`).
    z : ndarray of shape (n_samples, latent_numel)

    Returns
    -------
    tuple of AttributeLookup, one per attribute
    """
    v = space.vectors(z)
    out = []
    for attr in space.attributes:
        va = v[:, attr.lo : attr.hi]
        dist = np.linalg.norm(va[:, None, :] - attr.centers[None], axis=-1)  # (n, n_classes)
        dist[:, ~attr.active] = np.inf
        order = np.argsort(dist, axis=1)
        pred = order[:, 0]
        rows = np.arange(len(v))
        nearest = dist[rows, pred]
        second = dist[rows, order[:, 1]] if dist.shape[1] > 1 else np.full(len(v), np.inf)
        percentile = np.full(len(v), np.nan)
        for c in np.unique(pred):
            ref = attr.train_dist[c] if attr.train_dist else np.empty(0)
            sel = pred == c
            if len(ref):
                percentile[sel] = 100.0 * np.searchsorted(ref, nearest[sel], "right") / len(ref)
        if attr.ood_threshold is None:
            ood = np.zeros(len(v), dtype=bool)
        else:
            ood = (dist > attr.ood_threshold[None, :]).all(axis=1)
        out.append(
            AttributeLookup(
                name=attr.name,
                class_names=attr.class_names,
                pred=pred,
                distance=nearest,
                margin=second - nearest,
                in_sphere=nearest <= attr.radii[pred],
                percentile=percentile,
                ood=ood,
                distances=dist,
            )
        )
    return tuple(out)


def nearest_samples(
    z_query: np.ndarray, z_db: np.ndarray, k: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest database rows of each query (Euclidean): exact up to
    ``lsx.analysis.knn.EXACT_MAX`` database rows, an HNSW index (FAISS) above.

    Returns
    -------
    ids, distances : ndarrays of shape (n_queries, min(k, n_db)), nearest first
    """
    q, db = _as_2d(z_query, "z_query"), _as_2d(z_db, "z_db")
    if q.shape[1] != db.shape[1]:
        raise DataShapeError(f"Query latents have {q.shape[1]} columns, database {db.shape[1]}.")
    from lsx.analysis.knn import build_index

    ids, dist = build_index(db, n_queries=len(q)).query(q, max(1, min(int(k), len(db))))
    return ids, dist


def place_by_neighbours(
    z_new: np.ndarray, z_ref: np.ndarray, coords_ref: np.ndarray, k: int = 15
) -> np.ndarray:
    """Map coordinates of new points: the mean map position of their k nearest reference points
    in LATENT space (never ``UMAP.transform``).

    Returns
    -------
    ndarray of shape (n_new, coords_ref.shape[1])
    """
    from lsx.analysis.knn import build_index
    from lsx.analysis.tiers import place_by_neighbours as place  # the map tiers' placement

    coords_ref = np.asarray(coords_ref, dtype=np.float64)
    if len(coords_ref) != len(z_ref):
        raise DataShapeError(f"coords_ref has {len(coords_ref)} rows but z_ref {len(z_ref)}.")
    q, db = _as_2d(z_new, "z_new"), _as_2d(z_ref, "z_ref")
    if q.shape[1] != db.shape[1]:
        raise DataShapeError(f"New latents have {q.shape[1]} columns, reference {db.shape[1]}.")
    index = build_index(db, n_queries=len(q))
    return place(index, coords_ref, q, np.arange(len(q)), max(1, min(int(k), len(db))))
