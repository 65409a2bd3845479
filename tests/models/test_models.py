"""Every model kind through the registry: shapes, finite loss, one-step descent, round trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lsx.checkpoint import load_checkpoint, save_checkpoint
from lsx.config import ModelConfig, config_to_dict
from lsx.errors import ConfigError, DataShapeError
from lsx.models import MODELS, build_model, config_from_json_dict, make_config, spec_for

KINDS = sorted(MODELS)
SHAPES = [((1, 8, 8), False), ((1, 16, 16), False), ((3, 16, 16), True)]


def tiny(kind: str, shape=(1, 8, 8), spatial=False, **kw):
    return build_model(
        make_config(
            kind,
            input_shape=shape,
            latent_dim=3,
            hidden_dim=16,
            spatial=spatial,
            arch="conv" if spatial else "auto",
            **kw,
        )
    )


def test_registry_keys_match_config_kind():
    for kind, spec in MODELS.items():
        assert spec.config_cls.kind == kind
        assert issubclass(spec.config_cls, ModelConfig)
        assert spec.summary


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("shape", "spatial"), SHAPES)
def test_shapes_and_finite_loss(kind, shape, spatial):
    model = tiny(kind, shape, spatial)
    x = torch.rand(8, *shape)
    z = model.encode(x)
    expected = (8, 3, shape[1] // 4, shape[2] // 4) if spatial else (8, 3)
    assert tuple(z.shape) == expected
    assert tuple(model.latent_shape) == expected[1:]
    x_hat = model.decode(z).detach()
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0.0
    assert float(x_hat.max()) <= 1.0
    losses = model.loss(x)
    assert torch.isfinite(losses.total)
    assert "recon" in losses.terms
    assert all(torch.isfinite(v) for v in losses.terms.values())


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_lowers_the_loss_on_a_fixed_batch(kind):
    model = tiny(kind, (1, 16, 16))
    x = torch.rand(8, 1, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    before = float(model.loss(x).total.detach())
    for _ in range(3):
        opt.zero_grad()
        torch.manual_seed(1)  # same noise for DAE/VAE, so the comparison is fair
        model.loss(x).total.backward()
        opt.step()
    torch.manual_seed(1)
    assert float(model.loss(x).total.detach()) < before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("shape", "spatial"), SHAPES)
def test_checkpoint_round_trip_gives_identical_outputs(kind, shape, spatial, tmp_path):
    model = tiny(kind, shape, spatial).eval()
    save_checkpoint(model, model.config, tmp_path)
    loaded, config = load_checkpoint(tmp_path)
    assert config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    x = torch.rand(4, *shape)
    torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_config_json_round_trip(kind):
    config = make_config(kind, input_shape=(3, 32, 32), latent_dim=5)
    again = config_from_json_dict(config_to_dict(config))
    assert again == config
    assert isinstance(again.input_shape, tuple)


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ConfigError, match=r"unknown model kind 'vea'; known kinds: ae, dae, .*vae"):
        spec_for("vea")


def test_unknown_field_names_the_closest_one():
    with pytest.raises(ConfigError, match=r"did you mean 'latent_dim' for 'latnet_dim'"):
        make_config("vae", latnet_dim=3)


def test_field_of_another_kind_is_refused():
    with pytest.raises(ConfigError, match=r"AEConfig has no field\(s\) \['beta'\]"):
        make_config("ae", beta=2.0)


@pytest.mark.parametrize(
    ("kind", "field", "value", "msg"),
    [
        ("ae", "latent_dim", 0, r"'latent_dim' field of AEConfig must be an int >= 1"),
        ("vae", "beta", -1.0, r"'beta' field of VAEConfig must be a finite number >= 0"),
        ("dae", "noise", "pink", r"'noise' field of DAEConfig must be one of 'gaussian'"),
        ("dae", "noise_level", 2.0, r"'noise_level' field of DAEConfig must be .* <= 1.0"),
        ("ae", "input_shape", (2, 8, 8), r"'input_shape' field of AEConfig must be a tuple"),
        ("ae", "arch", "rnn", r"'arch' field of AEConfig must be one of 'auto', 'mlp', 'conv'"),
    ],
)
def test_out_of_range_fields_say_what_is_allowed(kind, field, value, msg):
    with pytest.raises(ConfigError, match=msg):
        make_config(kind, **{field: value})


def test_spatial_latent_needs_conv():
    with pytest.raises(ConfigError, match=r"spatial latent needs the conv architecture"):
        make_config("ae", input_shape=(1, 8, 8), spatial=True, arch="mlp")


def test_configs_are_frozen():
    config = make_config("vae")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.beta = 3.0  # type: ignore[misc]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_a_clear_error(kind):
    model = tiny(kind)
    with pytest.raises(DataShapeError, match=r"expects images of shape \(batch, 1, 8, 8\); got"):
        model.loss(torch.rand(2, 1, 9, 9))
    x = torch.rand(2, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataShapeError, match="NaN or Inf"):
        model.loss(x)


def test_vae_kl_matches_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    from lsx.models.base import gaussian_kl

    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    ours = gaussian_kl(mu, logvar)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(ours, ref)


def test_dae_noise_kinds_corrupt_as_configured():
    from lsx.models.dae import corrupt

    x = torch.full((1000,), 0.5)
    assert torch.allclose(corrupt(x, "gaussian", 0.0), x)
    masked = corrupt(x, "masking", 0.3)
    assert 0.2 < float((masked == 0).float().mean()) < 0.4
    sp = corrupt(x, "salt_pepper", 0.5)
    assert set(torch.unique(sp).tolist()) <= {0.0, 0.5, 1.0}
    assert float(corrupt(torch.ones(100), "gaussian", 0.5).max()) <= 1.0
