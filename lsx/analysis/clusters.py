"""Metrics, colourings and the centre overlay of latent spaces with known clusters
(docs/methods.md): accuracies, grouping ratio, sanity table, overlap warnings.

The cluster spaces and the decoder-free lookup (configured ``sae`` centres, or class centroids
for every other kind) live in :mod:`lsx.analysis.cluster_space`; every public name there is
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lsx.analysis.cluster_space import CENTROID_RADIUS_QUANTILE as CENTROID_RADIUS_QUANTILE
from lsx.analysis.cluster_space import COLOR_KINDS as COLOR_KINDS
from lsx.analysis.cluster_space import GROUP_CAP as GROUP_CAP
from lsx.analysis.cluster_space import OOD_FACTOR as OOD_FACTOR
from lsx.analysis.cluster_space import OOD_QUANTILE as OOD_QUANTILE
from lsx.analysis.cluster_space import RULE_CENTROID as RULE_CENTROID
from lsx.analysis.cluster_space import RULE_CONFIGURED as RULE_CONFIGURED
from lsx.analysis.cluster_space import RULES as RULES
from lsx.analysis.cluster_space import STABILITY_NAME as STABILITY_NAME
from lsx.analysis.cluster_space import AttributeLookup as AttributeLookup
from lsx.analysis.cluster_space import AttributeSpace as AttributeSpace
from lsx.analysis.cluster_space import ClusterSpace as ClusterSpace
from lsx.analysis.cluster_space import _as_2d, _label_columns
from lsx.analysis.cluster_space import calibrate as calibrate
from lsx.analysis.cluster_space import centroid_space as centroid_space
from lsx.analysis.cluster_space import cluster_space as cluster_space
from lsx.analysis.cluster_space import configured_space as configured_space
from lsx.analysis.cluster_space import is_configured as is_configured
from lsx.analysis.cluster_space import lookup as lookup
from lsx.analysis.cluster_space import nearest_samples as nearest_samples
from lsx.analysis.cluster_space import place_by_neighbours as place_by_neighbours
from lsx.errors import DataShapeError

# ------------------------------------------------------------------------------ metrics


def nearest_center_accuracy(
    space: ClusterSpace, z: np.ndarray, labels: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Share of points whose nearest centre is their class, per attribute (points of inactive,
    e.g. held-out, classes are left out)."""
    cols = _label_columns(labels, space, len(z))
    out = {}
    for res, attr, y in zip(lookup(space, z), space.attributes, cols, strict=True):
        keep = attr.active[y]
        out[attr.name] = float((res.pred[keep] == y[keep]).mean()) if keep.any() else math.nan
    return out


def in_sphere_rates(
    space: ClusterSpace, z: np.ndarray, labels: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per attribute, per class: share of the class's points inside ITS OWN sphere (NaN: none)."""
    v = space.vectors(z)
    cols = _label_columns(labels, space, len(v))
    out = {}
    for attr, y in zip(space.attributes, cols, strict=True):
        d = np.linalg.norm(v[:, attr.lo : attr.hi] - attr.centers[y], axis=1)
        inside = d <= attr.radii[y]
        out[attr.name] = np.array(
            [inside[y == c].mean() if (y == c).any() else np.nan for c in range(len(attr.radii))]
        )
    return out


def knn_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, k: int = 5
) -> float:
    """Test accuracy of a k-nearest-neighbour vote over the training latents (Euclidean)."""
    ids, _ = nearest_samples(z_test, z_train, k)
    votes = np.asarray(y_train)[ids]  # (n_test, k)
    pred = np.array([np.bincount(row).argmax() for row in votes])
    return float((pred == np.asarray(y_test)).mean())


def linear_probe_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, seed: int = 0
) -> float:
    """Test accuracy of a logistic regression fitted on standardised training latents."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(_as_2d(z_train, "z_train"), y_train)
    return float(clf.score(_as_2d(z_test, "z_test"), y_test))


@dataclass(frozen=True)
class GroupingReport:
    """Intra- vs inter-group mean distances of some classes' points (ratio < 1: grouped)."""

    classes: tuple[int, ...]
    intra: float
    inter: float
    ratio: float
    knn_purity: float  # share of each point's 5 nearest (same classes) with its class


def grouping_ratio(
    z: np.ndarray, y: np.ndarray, classes: Sequence[int], *, seed: int = 0
) -> GroupingReport:
    """Do the points of ``classes`` form tight groups? The paper's unseen-class claim.

    Parameters
    ----------
    z : ndarray of shape (n, n_features)
    y : ndarray of shape (n,)
    classes : at least 2 class labels whose points are compared (e.g. the held-out ones)
    seed : int
        Seed of the per-class sample of at most ``GROUP_CAP`` points.
    """
    z, y = _as_2d(z, "z"), np.asarray(y)
    classes = tuple(int(c) for c in classes)
    if len(classes) < 2:
        raise DataShapeError(f"grouping_ratio needs at least 2 classes; got {list(classes)}.")
    rng = np.random.default_rng(seed)
    idx = []
    for c in classes:
        members = np.flatnonzero(y == c)
        if len(members) < 2:
            raise DataShapeError(f"class {c} has {len(members)} points; need at least 2.")
        idx.append(rng.permutation(members)[:GROUP_CAP])
    sel = np.concatenate(idx)
    zs, ys = z[sel], y[sel]
    d = np.linalg.norm(zs[:, None] - zs[None], axis=-1)
    same = ys[:, None] == ys[None]
    off_diag = ~np.eye(len(zs), dtype=bool)
    intra, inter = float(d[same & off_diag].mean()), float(d[~same].mean())
    np.fill_diagonal(d, np.inf)
    nn5 = np.argsort(d, axis=1)[:, :5]
    purity = float((ys[nn5] == ys[:, None]).mean())
    return GroupingReport(classes, intra, inter, intra / inter, purity)


@dataclass(frozen=True, eq=False)
class SanityReport:
    """Per-cluster sanity of one attribute, computed in latent space (not in 2-D).

    ``rows``: one dict per class (``class n purity recall in_sphere mean_margin``); purity = share
    of the points ASSIGNED to the cluster that belong to its class. ``misassigned``: indices of
    wrongly assigned points, most confident mistake (largest margin) first, with ``true``,
    ``pred`` and ``margin`` aligned to it.
    """

    attribute: str
    rows: list[dict]
    misassigned: np.ndarray
    true: np.ndarray
    pred: np.ndarray
    margin: np.ndarray


def cluster_sanity(
    space: ClusterSpace, z: np.ndarray, labels: Mapping[str, np.ndarray], attribute: str
) -> SanityReport:
    """Purity, recall, in-sphere rate and mean margin per cluster, plus ranked mistakes."""
    a, attr = space.attribute(attribute)
    y = _label_columns(labels, space, len(z))[a]
    res = lookup(space, z)[a]
    rows = []
    for c, name in enumerate(attr.class_names):
        assigned, members = res.pred == c, y == c
        rows.append(
            {
                "class": name,
                "n": int(members.sum()),
                "assigned": int(assigned.sum()),
                "purity": float((y[assigned] == c).mean()) if assigned.any() else math.nan,
                "recall": float((res.pred[members] == c).mean()) if members.any() else math.nan,
                "in_sphere": float(res.in_sphere[members & assigned].sum() / max(members.sum(), 1)),
                "mean_margin": float(res.margin[assigned].mean()) if assigned.any() else math.nan,
                "active": bool(attr.active[c]),
            }
        )
    wrong = np.flatnonzero((res.pred != y) & attr.active[y])
    wrong = wrong[np.argsort(-res.margin[wrong], kind="stable")]
    return SanityReport(attr.name, rows, wrong, y[wrong], res.pred[wrong], res.margin[wrong])


def overlap_warnings(space: ClusterSpace) -> list[str]:
    """One sentence per pair of overlapping spheres (configured radii can be set to overlap)."""
    from lsx.models.centres import sphere_overlaps

    out = []
    for attr in space.attributes:
        keep = np.flatnonzero(attr.active)
        for i, j, excess in sphere_overlaps(attr.centers[keep], attr.radii[keep]):
            a, b = attr.class_names[keep[i]], attr.class_names[keep[j]]
            out.append(
                f"{attr.name}: the spheres of {a!r} and {b!r} overlap by {excess:.3g} (radii "
                f"{attr.radii[keep[i]]:.3g} + {attr.radii[keep[j]]:.3g} > centre distance)."
            )
    return out


def color_codes(
    space: ClusterSpace, z: np.ndarray, labels: Mapping[str, np.ndarray], key: str
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Categorical colours of points for a ``COLOR_KINDS`` key such as ``"predicted:digit"``.

    Returns
    -------
    codes : ndarray of shape (n,), int
    categories : tuple of str
        Names of the codes.
    title : str
    """
    kind, _, attribute = key.partition(":")
    if kind not in COLOR_KINDS:
        raise DataShapeError(f"Unknown cluster colour {key!r}; use one of {sorted(COLOR_KINDS)}.")
    a, attr = space.attribute(attribute)
    res = lookup(space, z)[a]
    title = f"{COLOR_KINDS[kind]} ({attr.name})"
    if kind == "predicted":
        return res.pred, attr.class_names, title
    if kind == "in_sphere":
        return res.in_sphere.astype(np.int64), ("outside", "inside"), title
    y = _label_columns(labels, space, len(res.pred))[a]
    return (res.pred == y).astype(np.int64), ("wrong", "right"), title


# ------------------------------------------------------------------------------ map overlay


@dataclass(frozen=True, eq=False)
class CenterOverlay:
    """Centres of one attribute on a 2-D/3-D map, and the outlines of their spheres.

    ``exact`` is True when the map is an affine function of the latent (PCA): then the centres
    and the sphere outlines (ellipses: a ball seen through the projection) are exact. Otherwise
    (UMAP, t-SNE) each centre sits at the mean map position of its class's in-sphere points and
    the outline is a circle through their median distance: an approximation, said in ``note``.
    """

    names: tuple[str, ...]
    coords: np.ndarray  # (n_classes, 2 or 3)
    outlines: tuple[np.ndarray, ...]  # per class (m, 2); empty in 3-D
    exact: bool
    note: str


def center_overlay(
    space: ClusterSpace,
    z: np.ndarray,
    coords: np.ndarray,
    labels: Mapping[str, np.ndarray],
    attribute: str,
    n_outline: int = 48,
) -> CenterOverlay:
    """Project one attribute's centres and spheres onto an existing map of ``z``."""
    a, attr = space.attribute(attribute)
    zf, xy = _as_2d(z, "z"), np.asarray(coords, dtype=np.float64)
    design = np.hstack([zf, np.ones((len(zf), 1))])
    w, *_ = np.linalg.lstsq(design, xy, rcond=None)  # (D + 1, k): xy ~ [z, 1] @ w
    resid = np.abs(design @ w - xy).max() / max(np.abs(xy).max(), 1e-12)
    exact = bool(resid < 1e-3 and space.pool is None and len(zf) > zf.shape[1])
    t = np.linspace(0.0, 2 * np.pi, n_outline)
    if exact:
        base = np.tile(zf.mean(axis=0), (len(attr.centers), 1))  # other attributes at their mean
        base[:, attr.lo : attr.hi] = attr.centers
        centre_xy = np.hstack([base, np.ones((len(base), 1))]) @ w
        outlines: list[np.ndarray] = []
        if xy.shape[1] == 2:
            u, s, _ = np.linalg.svd(w[attr.lo : attr.hi].T, full_matrices=False)  # (2, d)
            ellipse = (u * s) @ np.vstack([np.cos(t), np.sin(t)])[: len(s)]  # (2, m)
            outlines = [centre_xy[c] + attr.radii[c] * ellipse.T for c in range(len(base))]
        note = "centres and spheres projected exactly (the map is linear in the latent)"
        if len(space.attributes) > 1:
            note += "; the other attributes' sub-spaces are held at their mean"
        return CenterOverlay(attr.class_names, centre_xy, tuple(outlines), True, note)
    res = lookup(space, zf)[a]
    y = _label_columns(labels, space, len(zf))[a]
    centre_xy = np.zeros((len(attr.centers), xy.shape[1]))
    outlines = []
    for c in range(len(attr.centers)):
        sel = (y == c) & res.in_sphere & (res.pred == c)
        sel = sel if sel.any() else (y == c)
        if not sel.any():
            centre_xy[c] = np.nan
            outlines.append(np.full((n_outline, 2), np.nan))
            continue
        centre_xy[c] = xy[sel].mean(axis=0)
        rad = float(np.median(np.linalg.norm(xy[sel] - centre_xy[c], axis=1)))
        outlines.append(centre_xy[c, :2] + rad * np.stack([np.cos(t), np.sin(t)], axis=1))
    if xy.shape[1] != 2:
        outlines = []
    note = (
        "approximate: a non-linear map has no image of a centre; each marker is the mean map "
        "position of its class's in-sphere points, the circle their median distance"
    )
    return CenterOverlay(attr.class_names, centre_xy, tuple(outlines), False, note)
