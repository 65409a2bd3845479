"""The sae kind: geometric loss, centre designs, radii, centres files, multi-attribute latents,
encoder configurations, held-out classes, optional classifier head, and a tiny convergence run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lsx.checkpoint import load_checkpoint, save_checkpoint
from lsx.config import TrainConfig, config_to_dict
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, config_from_json_dict, dataset_fields, make_config
from lsx.models.centres import (
    make_centers,
    make_radii,
    pairwise,
    read_centers_file,
    resolve_design,
    sphere_overlaps,
)
from lsx.models.sae import geometric_loss
from lsx.train import Trainer


def sae(**kw):
    base = dict(input_shape=(1, 8, 8), latent_dim=4, hidden_dim=16, n_classes=(3,))
    return build_model(make_config("sae", **{**base, **kw}))


# ------------------------------------------------------------------------------ geometric loss


def test_geometric_loss_matches_the_formula_by_hand():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    radii = torch.tensor([1.0, 2.0])
    z = torch.tensor([[0.5, 0.0], [3.0, 4.0], [10.0, 3.0]])  # inside, d=5 r=1, d=3 r=2
    y = torch.tensor([0, 0, 1])
    expected = (0.0 + (math.exp(5 - 1) - 1) + (math.exp(3 - 2) - 1)) / 3  # normalised by B
    got = geometric_loss(z, y, centers, radii, max_excess=20.0)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_geometric_loss_is_zero_inside_and_guarded_far_outside():
    centers, radii = torch.zeros(1, 3), torch.ones(1)
    y = torch.zeros(2, dtype=torch.long)
    inside = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0]], requires_grad=True)
    loss = geometric_loss(inside, y, centers, radii, 20.0)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(inside.grad).all()  # sqrt at distance 0 has a finite gradient
    far = torch.tensor([[1e4, 0.0, 0.0]], requires_grad=True)
    loss = geometric_loss(far, y[:1], centers, radii, 20.0)
    loss.backward()
    assert torch.isfinite(loss)
    # linear past the clamp: value expm1(20) + e^20 (excess - 20), gradient e^20 (not 0)
    assert float(loss.detach()) == pytest.approx(
        math.expm1(20) + math.exp(20) * (1e4 - 1 - 20), rel=1e-4
    )
    assert float(far.grad[0, 0]) == pytest.approx(math.exp(20), rel=1e-4)


# ------------------------------------------------------------------------------ configurations


def test_centre_designs_have_their_geometry():
    onehot = make_centers("onehot", 4, 6, scale=2.0)
    assert onehot.shape == (4, 6)
    np.testing.assert_allclose(pairwise(onehot)[~np.eye(4, dtype=bool)], 2 * math.sqrt(2))
    simplex = make_centers("simplex", 5, 4)
    d = pairwise(simplex)[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(d, d[0])  # regular: all distances equal
    np.testing.assert_allclose(np.linalg.norm(simplex, axis=1), 1.0)
    np.testing.assert_allclose(simplex.sum(axis=0), 0.0, atol=1e-12)  # centred
    np.testing.assert_allclose(d[0], math.sqrt(2 * 5 / 4))  # unit simplex edge sqrt(2n/(n-1))
    roots = make_centers("an_root", 6, 3, seed=1) * math.sqrt(2)
    assert sorted(np.sort(roots, axis=1).tolist()) == sorted([[-1.0, 0.0, 1.0]] * 6)
    assert len({tuple(r) for r in roots.tolist()}) == 6  # distinct vectors e_i - e_j
    rand = make_centers("random", 10, 3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(rand, axis=1), 1.0)
    assert pairwise(rand).min() > 0.8  # greedy far-apart pick on the sphere
    np.testing.assert_array_equal(rand, make_centers("random", 10, 3, seed=0))
    assert not np.allclose(rand, make_centers("random", 10, 3, seed=1))
    assert resolve_design("auto", 10, 9) == "simplex"
    assert resolve_design("auto", 10, 3) == "random"


def test_radii_per_class_or_shared_and_overlap_detection():
    c = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0]])
    np.testing.assert_allclose(make_radii(c, 0.5, "per_class"), [0.5, 0.5, 2.0])
    np.testing.assert_allclose(make_radii(c, 0.5, "shared"), [0.5, 0.5, 0.5])
    assert sphere_overlaps(c, make_radii(c, 1.0)) == []
    overlaps = sphere_overlaps(c, make_radii(c, 1.5))
    assert [(i, j) for i, j, _ in overlaps] == [(0, 1)]
    assert overlaps[0][2] == pytest.approx(1.0)  # 1.5 + 1.5 - 2


def test_overlapping_radii_warn_with_the_overlap():
    with pytest.warns(UserWarning, match=r"spheres of classes 0 and 1 overlap by 0\.707"):
        sae(configuration="onehot", radius_fraction=1.5)  # sqrt(2) * 1.5 - sqrt(2)


def test_design_that_does_not_fit_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'onehot' needs at least as many dimensions as classes"):
        make_config("sae", latent_dim=4, n_classes=(10,), configuration="onehot")
    with pytest.raises(ConfigError, match=r"'an_root' in 2 dimensions has only 2 vectors"):
        make_config("sae", latent_dim=2, n_classes=(3,), configuration="an_root")


# ------------------------------------------------------------------------------ centres files


def test_centres_from_json_csv_and_their_round_trip(tmp_path):
    rows = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]
    js = tmp_path / "c.json"
    js.write_text(json.dumps(rows))
    model = sae(latent_dim=2, configuration="file", centers_file=str(js))
    np.testing.assert_allclose(model.centers(0).numpy(), rows)
    csv = tmp_path / "c.csv"
    csv.write_text("x,y\n1,0\n0,1\n-1,-1\n")
    assert read_centers_file(csv, (3,), (2,)) == tuple(tuple(r) for r in rows)
    # the config carries the centres, so the checkpoint loads without the file
    save_checkpoint(model, model.config, tmp_path / "run")
    js.unlink()
    loaded, config = load_checkpoint(tmp_path / "run")
    assert config == model.config
    np.testing.assert_allclose(loaded.centers(0).numpy(), rows)


def test_multi_attribute_centres_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"pattern": [[1, 0], [0, 1]], "colour": [[2.0], [-2.0], [0.5]]}))
    model = sae(
        latent_dim=3, n_classes=(2, 3), attribute_dims=(2, 1), configuration="file",
        centers_file=str(path),
    )  # fmt: skip
    assert model.centers(1).shape == (3, 1)
    np.testing.assert_allclose(model.centers(1).numpy().ravel(), [2.0, -2.0, 0.5])


@pytest.mark.parametrize(
    ("content", "suffix", "msg"),
    [
        ([[1, 0], [0, 1]], ".json", r"attribute 0 has 2 centres but 3 classes"),
        (
            [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            ".json",
            r"\[3\] numbers per row but its latent sub-space has 2",
        ),
        ("1,0\n0,1\n", ".csv", r"has 2 rows but the label attributes have 3 classes"),
        ([[1, 0], [1, 0], [0, 1]], ".json", r"two identical centres"),
        ([[1, "a"], [0, 1], [1, 1]], ".json", r"non-numeric value"),
        ("{not json", ".json", r"is not valid JSON"),
        ([[1, 0]], ".txt", r"must end in \.json or \.csv"),
    ],
)
def test_bad_centres_files_say_what_is_wrong(tmp_path, content, suffix, msg):
    path = tmp_path / f"c{suffix}"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError, match=msg):
        make_config(
            "sae", latent_dim=2, n_classes=(3,), configuration="file", centers_file=str(path)
        )


def test_missing_centres_file_and_centres_without_file_configuration(tmp_path):
    with pytest.raises(ConfigError, match=r"Cannot read the centres file"):
        make_config(
            "sae",
            latent_dim=2,
            n_classes=(3,),
            configuration="file",
            centers_file=str(tmp_path / "no.json"),
        )
    with pytest.raises(ConfigError, match=r"set configuration='file' to use them"):
        make_config("sae", latent_dim=2, n_classes=(3,), centers_file="c.json")
    with pytest.raises(ConfigError, match=r"configuration='file' needs centers_file"):
        make_config("sae", latent_dim=2, n_classes=(3,), configuration="file")


# ------------------------------------------------------------------------------ config fields


@pytest.mark.parametrize(
    ("fields", "msg"),
    [
        (
            {"n_classes": (1,)},
            r"'n_classes' field of SAEConfig must be a tuple of 1 to 16 ints >= 2",
        ),
        (
            {"attribute_dims": (2, 3)},
            r"'attribute_dims' field of SAEConfig must be \(\) or a tuple of 1",
        ),
        ({"n_classes": (3, 3), "attribute_dims": (1, 1)}, r"dims summing to latent_dim=4"),
        (
            {"held_out": (5,)},
            r"'held_out' field of SAEConfig must be a tuple of class indices in 0..2",
        ),
        ({"held_out": (0, 1)}, r"at most 1 classes \(two must stay to train\)"),
        ({"configuration": "hexagon"}, r"'configuration' field of SAEConfig must be one of 'auto'"),
        (
            {"radius_fraction": 0.0},
            r"'radius_fraction' field of SAEConfig must be a finite number > 0",
        ),
        ({"encoder_config": "tanh"}, r"'encoder_config' field of SAEConfig must be one of 'none'"),
    ],
)
def test_config_fields_are_validated(fields, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config("sae", **{"latent_dim": 4, "n_classes": (3,), **fields})


def test_int_class_count_and_json_round_trip():
    config = make_config("sae", n_classes=10, latent_dim=9)  # --n-classes 10 on the CLI
    assert config.n_classes == (10,)
    again = config_from_json_dict(json.loads(json.dumps(config_to_dict(config))))
    assert again == config


def test_dataset_fields_give_one_class_count_per_attribute(tiny_dataset):
    assert dataset_fields("sae", tiny_dataset) == {"input_shape": (1, 8, 8), "n_classes": (2,)}
    assert dataset_fields("ae", tiny_dataset) == {"input_shape": (1, 8, 8)}


# ------------------------------------------------------------------------------ loss and labels


def test_loss_terms_with_and_without_labels():
    model = sae()
    x = torch.rand(6, 1, 8, 8)
    assert set(model.loss(x).terms) == {"recon"}  # y=None: geometric term skipped
    losses = model.loss(x, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert set(losses.terms) == {"recon", "cluster", "in_sphere"}
    z = model.encode(x)
    manual = geometric_loss(
        z, torch.tensor([0, 1, 2, 0, 1, 2]), model.centers(), model.radii(), 20.0
    )
    torch.testing.assert_close(losses.terms["cluster"], manual)
    torch.testing.assert_close(losses.total, losses.terms["recon"] + manual)
    assert not any(n.startswith("heads") for n, _ in model.named_parameters())  # head off


def test_classifier_head_is_optional():
    model = sae(classifier_weight=0.5)
    losses = model.loss(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 1]))
    assert "ce" in losses.terms
    expected = losses.terms["recon"] + losses.terms["cluster"] + 0.5 * losses.terms["ce"]
    torch.testing.assert_close(losses.total, expected)


def test_multi_attribute_latent_is_split_into_sub_spaces():
    model = sae(latent_dim=7, n_classes=(3, 4))
    assert model.slices == [(0, 4), (4, 7)]
    assert model.centers(0).shape == (3, 4)
    assert model.centers(1).shape == (4, 3)  # 4 classes in 3 dims: simplex fits
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([[0, 3], [1, 2], [2, 1], [0, 0], [1, 1]])
    z = model.encode(x)
    expected = sum(
        geometric_loss(z[:, lo:hi], y[:, a], model.centers(a), model.radii(a), 20.0)
        for a, (lo, hi) in enumerate(model.slices)
    )
    torch.testing.assert_close(model.loss(x, y).terms["cluster"], expected)
    with pytest.raises(DataShapeError, match=r"has 2 label attribute\(s\) \(n_classes=\[3, 4\]\)"):
        model.loss(x, y[:, 0])


def test_labels_outside_the_configured_classes_are_a_clear_error():
    with pytest.raises(DataShapeError, match=r"Attribute 0 has label 7 but .* configured for 3"):
        sae().loss(torch.rand(2, 1, 8, 8), torch.tensor([0, 7]))


def test_held_out_classes_are_never_trained_on():
    model = sae(held_out=(2,))
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 2, 1, 2, 0, 1])
    keep = y != 2
    plain = sae(held_out=())
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(model.loss(x, y).total, plain.loss(x[keep], y[keep]).total)
    only_held = model.loss(x[~keep], y[~keep])
    assert float(only_held.total.detach()) == 0.0
    only_held.total.backward()  # still a graph: the trainer can step on such a batch


# ------------------------------------------------------------------------------ encoder config


def test_fixed_projection_keeps_latents_in_the_span_of_the_centres():
    model = sae(latent_dim=5, configuration="onehot", encoder_config="fixed_projection")
    z = model.encode(torch.rand(8, 1, 8, 8))
    assert z.shape == (8, 5)
    assert torch.all(z[:, 3:] == 0)  # onehot centres of 3 classes span the first 3 axes


def test_l2norm_puts_latents_on_the_sphere_through_the_centres():
    model = sae(latent_dim=4, center_scale=2.0, encoder_config="l2norm")
    z = model.encode(torch.rand(8, 1, 8, 8))
    torch.testing.assert_close(z.norm(dim=1), torch.full((8,), 2.0))


def test_encoder_configuration_needs_a_vector_latent():
    with pytest.raises(ConfigError, match=r"needs a vector latent"):
        make_config(
            "sae", input_shape=(1, 16, 16), spatial=True, arch="conv", encoder_config="l2norm"
        )


def test_spatial_latent_is_configured_through_its_spatial_mean():
    model = sae(input_shape=(1, 16, 16), spatial=True, arch="conv", latent_dim=3)
    z = model.encode(torch.rand(2, 1, 16, 16))
    assert z.shape == (2, 3, 4, 4)
    torch.testing.assert_close(model.configured(z), z.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------ training


def test_training_puts_each_class_inside_its_sphere(tiny_dataset):
    torch.manual_seed(0)
    model = build_model(
        make_config("sae", **dataset_fields("sae", tiny_dataset), latent_dim=2, hidden_dim=32)
    )
    Trainer(model, tiny_dataset, TrainConfig(epochs=40, batch_size=16, lr=3e-3)).fit()
    model.eval()
    with torch.no_grad():
        z = model.encode(torch.from_numpy(tiny_dataset.x_test.copy()))
    d = torch.cdist(z, model.centers())
    y = torch.from_numpy(tiny_dataset.y_test)
    assert torch.equal(d.argmin(1), y)  # nearest configured centre = label, no classifier
    inside = d.gather(1, y[:, None]).squeeze(1) <= model.radii()[y]
    assert float(inside.float().mean()) >= 0.9
