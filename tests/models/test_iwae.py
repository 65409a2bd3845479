"""The IWAE kind: its k-sample bound against torch.distributions, the bound's monotonicity in k,
the k >= 1 rule, and the consistency term on top."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from lsx.config import TrainConfig
from lsx.errors import ConfigError
from lsx.losses import objective
from lsx.models import MODELS, build_model, make_config


def tiny_iwae(k: int, **kw):
    return build_model(
        make_config("iwae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, k=k, **kw)
    )


def reference_bound(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), from torch.distributions, same noise draw."""
    mu, logvar = model.posterior(x)
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + q.scale * torch.randn(k, *mu.shape)  # the draw IWAE.loss makes after the seed
    x_hat = model.decode(z.flatten(0, 1)).unflatten(0, (k, len(x)))
    log_px = Bernoulli(probs=x_hat).log_prob(x.expand_as(x_hat)).flatten(2).sum(-1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz = q.log_prob(z).sum(-1)
    return torch.logsumexp(log_px + log_pz - log_qz, 0) - math.log(k)


@pytest.mark.parametrize("k", [1, 5])
def test_bound_matches_torch_distributions(k):
    model = tiny_iwae(k)
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()  # binary: a proper Bernoulli likelihood
    torch.manual_seed(11)
    got = model.loss(x)
    torch.manual_seed(11)
    ref = reference_bound(model, x, k)
    torch.testing.assert_close(got.total, -ref.mean())
    assert set(got.terms) == {"recon", "kl"}


def test_bound_tightens_with_k():
    x = torch.rand(16, 1, 8, 8)
    bounds = []
    for k in (1, 10, 100):
        torch.manual_seed(0)
        model = tiny_iwae(k)  # same weights for every k: built after the same seed
        with torch.no_grad():
            bounds.append(-float(torch.stack([model.loss(x).total for _ in range(20)]).mean()))
    assert bounds[0] < bounds[1] < bounds[2]


def test_k1_is_the_elbo_in_expectation():
    torch.manual_seed(0)
    iwae = tiny_iwae(1)
    vae = build_model(make_config("vae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16))
    vae.load_state_dict(iwae.state_dict())
    x = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        a = torch.stack([iwae.loss(x).total for _ in range(200)]).mean()
        b = torch.stack([vae.loss(x).total for _ in range(200)]).mean()
    assert abs(float(a - b)) < 0.01 * abs(float(b))


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_k_below_one_or_not_an_int_is_refused(bad):
    with pytest.raises(ConfigError, match=r"'k' field of IWAEConfig must be an int >= 1"):
        MODELS["iwae"].config_cls(k=bad)


def test_iwae_with_the_consistency_term_trains():
    model = tiny_iwae(3)
    x = torch.rand(8, 1, 8, 8)
    cfg = TrainConfig(consistency=1.0, transforms="simple")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(2)
    first = objective(model, x, None, cfg)
    assert first.terms["consistency"] > 0
    for _ in range(5):
        torch.manual_seed(2)
        opt.zero_grad()
        objective(model, x, None, cfg).total.backward()
        opt.step()
    torch.manual_seed(2)
    assert float(objective(model, x, None, cfg).total.detach()) < float(first.total.detach())
