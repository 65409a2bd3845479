"""Decoder-free lookup (lsx.analysis.clusters, lsx.analysis.lookup): predictions, distances,
margins, in-sphere, percentiles, OOD, centroid fallback, metrics, sanity, map overlay, placement,
cross-dataset search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import cdist
from scipy.stats import percentileofscore
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from lsx.analysis.clusters import (
    RULE_CENTROID,
    RULE_CONFIGURED,
    AttributeSpace,
    ClusterSpace,
    calibrate,
    center_overlay,
    centroid_space,
    cluster_sanity,
    cluster_space,
    color_codes,
    grouping_ratio,
    in_sphere_rates,
    knn_accuracy,
    linear_probe_accuracy,
    lookup,
    nearest_center_accuracy,
    nearest_samples,
    overlap_warnings,
    place_by_neighbours,
)
from lsx.analysis.lookup import (
    adapt_images,
    lookup_images,
    prediction_rows,
    retrieval_precision,
    summary_row,
)
from lsx.errors import DataShapeError
from lsx.models import build_model, make_config

CENTERS = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])


def toy_space(radii=(1.0, 1.0, 1.0), active=(True, True, True)) -> ClusterSpace:
    attr = AttributeSpace(
        "shape", ("a", "b", "c"), 0, 2, CENTERS, np.array(radii), np.array(active)
    )
    return ClusterSpace(RULE_CONFIGURED, (attr,))


def train_points() -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    z = CENTERS[y] + rng.normal(0, 0.3, (150, 2))
    return z, {"shape": y}


def test_lookup_gives_class_distance_margin_sphere_percentile_and_ood():
    z_tr, labels = train_points()
    space = calibrate(toy_space(), z_tr, labels)
    z = np.array([[0.5, 0.0], [3.2, 0.1], [1.5, 1.0], [40.0, 40.0]])
    (res,) = lookup(space, z)
    dist = cdist(z, CENTERS)  # independent oracle
    np.testing.assert_array_equal(res.pred, dist.argmin(1))
    np.testing.assert_allclose(res.distance, dist.min(1))
    np.testing.assert_allclose(res.margin, np.sort(dist, 1)[:, 1] - np.sort(dist, 1)[:, 0])
    np.testing.assert_array_equal(res.in_sphere, [True, True, False, False])
    for i in range(len(z)):
        c = res.pred[i]
        ref = np.linalg.norm(z_tr[labels["shape"] == c] - CENTERS[c], axis=1)
        assert res.percentile[i] == pytest.approx(percentileofscore(ref, res.distance[i], "weak"))
    np.testing.assert_array_equal(res.ood, [False, False, False, True])
    assert res.percentile[0] < res.percentile[2]


def test_inactive_classes_take_no_part_in_predictions_or_accuracy():
    space = toy_space(active=(True, True, False))  # class c held out
    z = np.array([[0.1, 3.9], [0.0, 0.2]])
    (res,) = lookup(space, z)
    assert res.pred.tolist() == [0, 0]
    assert np.isinf(res.distances[:, 2]).all()
    acc = nearest_center_accuracy(space, z, {"shape": np.array([2, 0])})
    assert acc == {"shape": 1.0}  # the held-out sample is left out


def test_centroid_fallback_uses_class_means_and_a_95_percent_sphere():
    z_tr, labels = train_points()
    space = centroid_space(z_tr, labels, {"shape": ("a", "b", "c")})
    assert space.rule == RULE_CENTROID
    assert "fallback" in space.description
    attr = space.attributes[0]
    for c in range(3):
        members = z_tr[labels["shape"] == c]
        np.testing.assert_allclose(attr.centers[c], members.mean(0))
        inside = np.linalg.norm(members - attr.centers[c], axis=1) <= attr.radii[c]
        assert inside.mean() == pytest.approx(0.95, abs=0.02)


def test_cluster_space_picks_the_rule_by_kind(tiny_dataset):
    names = tiny_dataset.label_names
    for kind, rule in (("sae", RULE_CONFIGURED), ("ae", RULE_CENTROID)):
        fields = {"n_classes": (2,)} if kind == "sae" else {}
        model = build_model(
            make_config(kind, input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8, **fields)
        ).eval()
        with torch.no_grad():
            z = model.encode(torch.from_numpy(tiny_dataset.x_train.copy())).numpy()
        space = cluster_space(model, z, tiny_dataset.labels_train, names)
        assert space.rule == rule
        assert len(space.attributes[0].train_dist) == 2
        if kind == "sae":
            np.testing.assert_allclose(space.attributes[0].centers, model.centers().numpy())


def test_configured_space_refuses_another_datasets_classes():
    from lsx.analysis.clusters import configured_space

    model = build_model(make_config("sae", input_shape=(1, 8, 8), latent_dim=3, n_classes=(3,)))
    with pytest.raises(DataShapeError, match=r"configured for class counts \[3\] but the dataset"):
        configured_space(model, {"digit": tuple("0123456789")})


def test_multi_attribute_space_uses_each_sub_space():
    model = build_model(
        make_config("sae", input_shape=(1, 8, 8), latent_dim=5, n_classes=(3, 2))
    ).eval()
    from lsx.analysis.clusters import configured_space

    space = configured_space(model, {"pattern": ("p", "q", "r"), "colour": ("red", "blue")})
    z = np.hstack([model.centers(0).numpy()[[2]], model.centers(1).numpy()[[1]]])  # (1, 5)
    res = lookup(space, z)
    assert [r.pred[0] for r in res] == [2, 1]
    assert all(r.distance[0] == pytest.approx(0, abs=1e-6) for r in res)


def test_metrics_against_sklearn_and_by_hand():
    z_tr, labels = train_points()
    y = labels["shape"]
    rng = np.random.default_rng(1)
    z_te = CENTERS[y] + rng.normal(0, 1.2, (150, 2))
    ref = KNeighborsClassifier(5).fit(z_tr, y).score(z_te, y)
    assert knn_accuracy(z_tr, y, z_te, y, k=5) == pytest.approx(ref, abs=0.01)
    assert linear_probe_accuracy(z_tr, y, z_te, y) > 0.8
    space = toy_space()
    rates = in_sphere_rates(space, z_te, labels)["shape"]
    for c in range(3):
        d = np.linalg.norm(z_te[y == c] - CENTERS[c], axis=1)
        assert rates[c] == pytest.approx((d <= 1.0).mean())
    acc = nearest_center_accuracy(space, z_te, labels)["shape"]
    assert acc == pytest.approx((cdist(z_te, CENTERS).argmin(1) == y).mean())


def test_nearest_samples_and_placement_by_neighbours():
    rng = np.random.default_rng(0)
    db, q = rng.normal(size=(200, 5)), rng.normal(size=(7, 5))
    ids, dist = nearest_samples(q, db, k=4)
    ref = np.argsort(cdist(q, db), axis=1)[:, :4]
    np.testing.assert_array_equal(ids, ref)
    np.testing.assert_allclose(dist, np.sort(cdist(q, db), axis=1)[:, :4], atol=1e-9)
    coords = rng.normal(size=(200, 2))
    placed = place_by_neighbours(q, db, coords, k=4)
    np.testing.assert_allclose(placed, coords[ref].mean(axis=1))
    np.testing.assert_allclose(place_by_neighbours(db[:3], db, coords, k=1), coords[:3])


def test_grouping_ratio_tells_groups_from_noise():
    rng = np.random.default_rng(0)
    y = np.repeat([7, 8, 9], 40)
    grouped = np.eye(3)[y - 7] * 10 + rng.normal(0, 0.5, (120, 3))
    rep = grouping_ratio(grouped, y, (8, 9))
    assert rep.ratio < 0.2
    assert rep.knn_purity == 1.0
    noise = grouping_ratio(rng.normal(size=(120, 3)), y, (8, 9))
    assert 0.85 < noise.ratio < 1.15
    with pytest.raises(DataShapeError, match=r"needs at least 2 classes"):
        grouping_ratio(grouped, y, (8,))


def test_sanity_report_purity_and_ranked_mistakes():
    space = toy_space()
    z = np.array([[0.1, 0.0], [3.9, 0.0], [3.0, 0.0], [0.1, 3.9], [0.0, 0.5]])
    y = np.array([0, 1, 0, 2, 1])  # sample 2 (true a) sits near b, sample 4 (true b) near a
    rep = cluster_sanity(space, z, {"shape": y}, "shape")
    rows = {r["class"]: r for r in rep.rows}
    assert rows["a"]["purity"] == pytest.approx(1 / 2)  # assigned: samples 0 and 4
    assert rows["b"]["purity"] == pytest.approx(1 / 2)  # assigned: samples 1 and 2
    assert rows["c"]["purity"] == 1.0
    assert rows["a"]["recall"] == pytest.approx(1 / 2)
    margins = np.sort(cdist(z, CENTERS), 1)
    expected = {2: margins[2, 1] - margins[2, 0], 4: margins[4, 1] - margins[4, 0]}
    order = sorted(expected, key=lambda i: -expected[i])
    assert rep.misassigned.tolist() == order  # most confident mistake first
    np.testing.assert_allclose(rep.margin, [expected[i] for i in order])


def test_overlap_warnings_name_the_classes():
    assert overlap_warnings(toy_space()) == []
    msgs = overlap_warnings(toy_space(radii=(2.5, 2.0, 1.0)))
    assert msgs == [
        "shape: the spheres of 'a' and 'b' overlap by 0.5 (radii 2.5 + 2 > centre distance)."
    ]


def test_cluster_colours():
    space = toy_space()
    z = np.array([[0.1, 0.0], [3.0, 0.0], [0.0, 4.5]])
    labels = {"shape": np.array([0, 0, 2])}
    codes, cats, title = color_codes(space, z, labels, "predicted:shape")
    assert codes.tolist() == [0, 1, 2]
    assert cats == ("a", "b", "c")
    assert "predicted cluster" in title
    assert color_codes(space, z, labels, "correct:shape")[0].tolist() == [1, 0, 1]
    assert color_codes(space, z, labels, "in_sphere:shape")[0].tolist() == [1, 1, 1]


def test_centre_overlay_is_exact_on_pca_and_approximate_otherwise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centers = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    z = centers[y] + rng.normal(0, 0.3, (300, 4))
    attr = AttributeSpace(
        "shape", ("a", "b", "c"), 0, 4, centers, np.full(3, 0.5), np.ones(3, bool)
    )
    space = ClusterSpace(RULE_CONFIGURED, (attr,))
    pca = PCA(2).fit(z)
    ov = center_overlay(space, z, pca.transform(z), {"shape": y}, "shape")
    assert ov.exact
    np.testing.assert_allclose(ov.coords, pca.transform(centers), atol=1e-6)
    # the outline is the ball's image: every point at most r from the centre, some at r
    for c in range(3):
        reach = np.linalg.norm(ov.outlines[c] - ov.coords[c], axis=1)
        assert reach.max() == pytest.approx(0.5, rel=1e-3)
        assert reach.min() <= 0.5 + 1e-9
    bent = np.tanh(pca.transform(z)) ** 3  # not affine in z
    ov = center_overlay(space, z, bent, {"shape": y}, "shape")
    assert not ov.exact
    assert "approximate" in ov.note
    for c in range(3):
        assert np.linalg.norm(ov.coords[c] - bent[y == c].mean(0)) < 0.2


def test_lookup_images_on_a_model(tiny_dataset):
    model = build_model(
        make_config("sae", input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8, n_classes=(2,))
    ).eval()
    with torch.no_grad():
        z_tr = model.encode(torch.from_numpy(tiny_dataset.x_train.copy())).numpy()
    space = cluster_space(model, z_tr, tiny_dataset.labels_train, tiny_dataset.label_names)
    res = lookup_images(model, space, tiny_dataset.x_test[:3], z_tr, k=5)
    assert res.neighbour_ids.shape == (3, 5)
    assert res.recon_error.shape == (3,)
    rows = prediction_rows(res, 0)
    assert [r["attribute"] for r in rows] == ["label"]
    assert set(rows[0]) == {"attribute", "predicted", "distance", "margin", "percentile",
                            "in sphere", "OOD"}  # fmt: skip
    assert summary_row(res, 1)["label"] in ("top", "bottom")


def test_adapt_images_resizes_and_converts_channels():
    rng = np.random.default_rng(0)
    grey = rng.random((4, 1, 8, 8), dtype=np.float32)
    rgb = adapt_images(grey, (3, 28, 28))
    assert rgb.shape == (4, 3, 28, 28)
    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 2])
    colour = rng.random((2, 3, 16, 16), dtype=np.float32)
    g = adapt_images(colour, (1, 16, 16))
    pil = np.asarray(
        Image.fromarray((colour[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)).convert("L")
    )
    assert np.abs(g[0, 0] * 255 - pil).max() <= 1.5  # the luma Pillow uses for uploads


def test_retrieval_precision():
    ids = np.array([[0, 1], [2, 3]])
    assert retrieval_precision(np.array([1, 0]), np.array([1, 1, 1, 0]), ids) == 0.75
    assert math.isclose(retrieval_precision(np.array([0]), np.array([0, 0]), ids[:1]), 1.0)
