"""lsx.losses: the closed-form KL and likelihoods against torch.distributions, and the training
objective with the consistency term against a hand-written computation of docs/methods.md."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from lsx.config import TrainConfig
from lsx.data.transforms import TRANSFORM_SETS
from lsx.errors import ConfigError
from lsx.losses import (
    EXTENSION_NOTE,
    describe_consistency,
    diag_gaussian_kl,
    log_likelihood,
    objective,
)
from lsx.models import build_model, make_config
from lsx.models.base import Losses

CR = TrainConfig(consistency=2.0, transforms="simple")


def tiny(kind: str, **kw) -> nn.Module:
    return build_model(
        make_config(kind, input_shape=(1, 16, 16), latent_dim=3, hidden_dim=16, **kw)
    )


def reference_kl(mu_p, lv_p, mu_q, lv_q) -> torch.Tensor:
    p = Normal(mu_p, (0.5 * lv_p).exp())
    q = Normal(mu_q, (0.5 * lv_q).exp())
    return kl_divergence(p, q).flatten(1).sum(1)


def test_diag_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_p, lv_p, mu_q, lv_q = (torch.randn(5, 4, 2, 2, generator=g) for _ in range(4))
    torch.testing.assert_close(
        diag_gaussian_kl(mu_p, lv_p, mu_q, lv_q), reference_kl(mu_p, lv_p, mu_q, lv_q)
    )
    same = diag_gaussian_kl(mu_p, lv_p, mu_p, lv_p)
    torch.testing.assert_close(same, torch.zeros(5))


def test_log_likelihoods_match_torch_distributions():
    x_hat = torch.rand(3, 1, 4, 4) * 0.98 + 0.01
    x = (torch.rand(3, 1, 4, 4) > 0.5).float()
    ref = Bernoulli(probs=x_hat).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(log_likelihood(x_hat, x, "bernoulli"), ref)
    ref = Normal(x_hat, 1.0).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(log_likelihood(x_hat, x, "gaussian", normalised=True), ref)
    unnormalised = log_likelihood(x_hat, x, "gaussian")
    torch.testing.assert_close(unnormalised - ref, torch.full((3,), 8 * math.log(2 * math.pi)))
    with pytest.raises(ConfigError, match=r"Unknown likelihood 'poisson'"):
        log_likelihood(x_hat, x, "poisson")


def test_lambda_zero_is_exactly_the_model_loss():
    model = tiny("vae")
    x = torch.rand(8, 1, 16, 16)
    torch.manual_seed(5)
    a = objective(model, x, None, TrainConfig())
    torch.manual_seed(5)
    b = model.loss(x)
    assert torch.equal(a.total, b.total)
    assert "consistency" not in a.terms


@pytest.mark.parametrize("kind", ["vae", "iwae"])
def test_consistency_objective_is_two_elbos_plus_lambda_kl(kind):
    model = tiny(kind)
    x = torch.rand(8, 1, 16, 16)
    torch.manual_seed(7)
    got = objective(model, x, None, CR)
    torch.manual_seed(7)  # the same draws, in the same order: t, then each pass's noise
    x_t = TRANSFORM_SETS["simple"](x)
    plain, moved = model.loss(x), model.loss(x_t)
    kl = reference_kl(*model.posterior(x_t), *model.posterior(x)).mean()  # KL(q(z|t(x))||q(z|x))
    torch.testing.assert_close(got.terms["consistency"], kl)
    torch.testing.assert_close(got.total, plain.total + moved.total + 2.0 * kl)
    torch.testing.assert_close(
        got.terms["recon"], 0.5 * (plain.terms["recon"] + moved.terms["recon"])
    )


def test_gradients_flow_through_both_encoder_passes():
    model = tiny("vae")
    x = torch.rand(8, 1, 16, 16)
    params = list(model.encoder.parameters())
    torch.manual_seed(1)
    term = objective(model, x, None, CR).terms["consistency"]
    ours = torch.autograd.grad(term, params)
    torch.manual_seed(1)
    x_t = TRANSFORM_SETS["simple"](x)
    both = reference_kl(*model.posterior(x_t), *model.posterior(x)).mean()
    mu, lv = model.posterior(x)
    stopped = reference_kl(*model.posterior(x_t), mu.detach(), lv.detach()).mean()
    for g, ref in zip(ours, torch.autograd.grad(both, params), strict=True):
        torch.testing.assert_close(g, ref)
    one_sided = torch.autograd.grad(stopped, params)
    assert not all(torch.allclose(g, h) for g, h in zip(ours, one_sided, strict=True))


def test_the_posterior_of_each_pass_is_reused_not_recomputed():
    model = tiny("vae")
    calls = []
    model.encoder.register_forward_hook(lambda *a: calls.append(1))
    objective(model, torch.rand(8, 1, 16, 16), None, CR)
    assert len(calls) == 2  # one per ELBO; the KL reuses their posteriors
    assert "posterior" not in vars(model)  # the recording wrapper is gone


@pytest.mark.parametrize("kind", ["ae", "dae"])
def test_deterministic_encoders_get_the_squared_latent_distance(kind):
    model = tiny(kind)
    x = torch.rand(8, 1, 16, 16)
    torch.manual_seed(3)
    got = objective(model, x, None, CR)
    torch.manual_seed(3)
    x_t = TRANSFORM_SETS["simple"](x)
    ref = (model.encode(x_t) - model.encode(x)).pow(2).sum(1).mean()  # clean inputs, also for DAE
    torch.testing.assert_close(got.terms["consistency"], ref)
    assert EXTENSION_NOTE in describe_consistency(model)
    assert "docs/methods.md" in describe_consistency(tiny("vae"))


class LabelStub(nn.Module):
    """Records the labels each loss call gets."""

    def __init__(self) -> None:
        super().__init__()
        self.config = make_config("ae", input_shape=(1, 8, 8))
        self.lin = nn.Linear(64, 2)
        self.seen: list = []

    def encode(self, x):
        return self.lin(x.flatten(1))

    def loss(self, x, y=None):
        self.seen.append(y)
        z = self.encode(x)
        return Losses(total=z.pow(2).mean(), terms={"recon": z.pow(2).mean()})


def test_transformed_inputs_keep_their_labels():
    stub = LabelStub()
    y = torch.arange(4)
    objective(stub, torch.rand(4, 1, 8, 8), y, CR)
    assert len(stub.seen) == 2
    assert all(torch.equal(s, y) for s in stub.seen)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "1"])
def test_negative_or_non_finite_lambda_is_refused(bad):
    with pytest.raises(ConfigError, match=r"'consistency' field of TrainConfig must be a finite"):
        TrainConfig(consistency=bad)


def test_bad_transform_options_are_refused():
    with pytest.raises(ConfigError, match=r"Unknown transform set 'rotations'; known sets: simple"):
        TrainConfig(consistency=1.0, transforms="rotations")
    with pytest.raises(ConfigError, match=r"'transform_strength' field of TrainConfig must be"):
        TrainConfig(consistency=1.0, transform_strength=0.0)
    with pytest.raises(ConfigError, match=r"only matter for the consistency term, which is off"):
        TrainConfig(transforms="simple")


def test_unsuitable_set_is_refused_when_the_objective_runs():
    model = tiny("vae")
    cfg = TrainConfig(consistency=1.0, transforms="textures")
    with pytest.raises(ConfigError, match=r"colour jitter, which needs RGB images"):
        objective(model, torch.rand(2, 1, 16, 16), None, cfg)
