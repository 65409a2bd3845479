"""Posterior health and consistency metrics, each against an independent computation:
numpy/scipy statistics, torch.distributions, closed forms of a linear-Gaussian model, and
brute-force neighbour search."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from lsx.analysis.consistency import MAX_PAIRS, consistency_scores, knn_retention, typical_distance
from lsx.analysis.embedding import posterior_arrays
from lsx.analysis.posterior import (
    active_units,
    downstream_accuracy,
    importance_nll,
    kl_per_dimension,
    mutual_information,
    posterior_report,
)
from lsx.data.transforms import TRANSFORM_SETS
from lsx.errors import ConfigError, DataShapeError
from lsx.models import build_model, make_config

RNG = np.random.default_rng(0)


def tiny(kind: str) -> nn.Module:
    torch.manual_seed(0)
    cfg = make_config(kind, input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16)
    return build_model(cfg).eval()


def test_active_units_match_numpy_covariance():
    mu = RNG.normal(size=(200, 4)) * np.array([1.0, 0.2, 0.05, 0.001])
    n, var = active_units(mu, threshold=0.01)
    np.testing.assert_allclose(var, np.diag(np.cov(mu.T)))
    assert n == 2  # variances ~1, 0.04, 0.0025, 1e-6
    assert active_units(mu, threshold=0.001)[0] == 3
    with pytest.raises(ConfigError, match=r"active-unit threshold must be a number >= 0"):
        active_units(mu, threshold=-1)


def test_kl_per_dimension_matches_torch_distributions():
    mu, lv = RNG.normal(size=(50, 3)), RNG.normal(size=(50, 3))
    q = Normal(torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * lv)))
    ref = kl_divergence(q, Normal(0.0, 1.0)).mean(0).numpy()
    np.testing.assert_allclose(kl_per_dimension(mu, lv), ref, rtol=1e-10)


def test_mutual_information_matches_a_loop_over_torch_densities():
    n, d, seed = 20, 3, 5
    mu, lv = RNG.normal(size=(n, d)), RNG.normal(size=(n, d)) * 0.3 - 1
    got = mutual_information(mu, lv, seed=seed)
    eps = torch.randn((n, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    qs = [Normal(torch.tensor(mu[i]), torch.tensor(np.exp(0.5 * lv[i]))) for i in range(n)]
    z = [qs[i].loc + qs[i].scale * eps[i] for i in range(n)]
    log_q_own = [float(qs[i].log_prob(z[i]).sum()) for i in range(n)]
    log_q_agg = [
        float(torch.logsumexp(torch.stack([q.log_prob(z[i]).sum() for q in qs]), 0)) - math.log(n)
        for i in range(n)
    ]
    expected = np.mean(np.asarray(log_q_own) - np.asarray(log_q_agg))
    assert 0 < expected < math.log(n)  # inside the bounds, so no clipping applies here
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_mutual_information_stays_in_zero_to_log_n_on_random_posteriors(n):
    # the old estimator (exact entropy, sampled mixture) exceeded log N in about half of these
    rng = np.random.default_rng(n)
    values = []
    for trial in range(40):
        d = int(rng.integers(1, 6))
        mu = rng.normal(size=(n, d)) * rng.choice([0.01, 1.0, 10.0])
        lv = rng.normal(size=(n, d)) * rng.choice([0.1, 2.0]) + rng.choice([-6.0, 0.0, 2.0])
        values.append(mutual_information(mu, lv, seed=trial))
    values = np.asarray(values)
    assert (values >= 0).all()
    assert (values <= math.log(n) + 1e-12).all()
    assert values.max() > 0.5 * math.log(n)  # well-separated posteriors reach near the cap


def test_mutual_information_of_separated_and_of_ignored_inputs_hits_the_bounds():
    n = 8
    separated = mutual_information(np.arange(n)[:, None] * 100.0, np.full((n, 1), -4.0))
    assert separated == pytest.approx(math.log(n), abs=1e-9)
    rng = np.random.default_rng(1)
    same_mu, same_lv = np.tile(rng.normal(size=(1, 3)), (n, 1)), np.tile([[0.3, -1, 2]], (n, 1))
    for seed in range(20):  # the posterior ignores x: every log-ratio is 0 (up to rounding)
        assert 0.0 <= mutual_information(same_mu, same_lv, seed=seed) < 1e-12


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, I): p(x) = N(b, W W^T + I) exactly."""

    def __init__(self, inflate: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(4, 2, generator=g)
        self.b = torch.randn(4, generator=g)
        self.inflate = inflate
        self.config = SimpleNamespace(kind="stub", input_shape=(1, 2, 2), likelihood="gaussian")
        self.latent_shape = (2,)
        self.cov = torch.linalg.inv(torch.eye(2) + self.w.T @ self.w)  # exact posterior covariance

    def posterior(self, x):
        mu = (x.flatten(1) - self.b) @ self.w @ self.cov  # Sigma W^T (x - b), (B, 2)
        var = torch.diagonal(self.cov) * self.inflate  # a diagonal proposal
        return mu, var.log().expand_as(mu)

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return (z @ self.w.T + self.b).view(-1, 1, 2, 2)


def test_importance_nll_recovers_the_exact_marginal_of_a_linear_gaussian():
    model = LinearGaussian(inflate=1.5)
    x = RNG.normal(size=(40, 1, 2, 2)).astype(np.float32) * 2
    exact = -MultivariateNormal(model.b, model.w @ model.w.T + torch.eye(4)).log_prob(
        torch.from_numpy(x).flatten(1)
    )
    got = importance_nll(model, x, n_samples=4000, seed=0)
    np.testing.assert_allclose(got, exact.numpy(), atol=0.03)
    rough = importance_nll(model, x, n_samples=1, seed=0)  # a single sample is an upper bound
    assert rough.mean() > got.mean()


def test_downstream_accuracy_is_fit_on_train_and_scored_on_test():
    z = RNG.normal(size=(400, 2))
    y0, y1 = (z[:, 0] > 0).astype(int), (z[:, 1] > 0).astype(int)
    assert downstream_accuracy(z[:200], y0[:200], z[200:], y0[200:]) > 0.95
    # labels follow z0 on train and z1 on test: a fit on train must fail on test
    assert 0.3 < downstream_accuracy(z[:200], y0[:200], z[200:], y1[200:]) < 0.7
    with pytest.raises(DataShapeError, match=r"at least two classes"):
        downstream_accuracy(z[:10], np.zeros(10), z[10:20], y0[10:20])


def test_typical_distance_is_the_median_pairwise_distance():
    z = RNG.normal(size=(300, 5))
    assert typical_distance(z) == pytest.approx(float(np.median(pdist(z))), rel=1e-12)
    big = RNG.normal(size=(1000, 5))  # > MAX_PAIRS pairs: a seeded random sample of pairs
    assert 1000 * 999 // 2 > MAX_PAIRS
    assert typical_distance(big) == pytest.approx(float(np.median(pdist(big))), rel=0.02)


def brute_knn(z: np.ndarray, q: np.ndarray, i: int, k: int) -> set[int]:
    d = np.linalg.norm(z - q, axis=1)
    d[i] = np.inf
    return set(np.argsort(d, kind="stable")[:k].tolist())


def test_knn_retention_matches_brute_force():
    z = RNG.normal(size=(60, 3))
    z_t = z + RNG.normal(size=z.shape) * 0.3
    got = knn_retention(z, z_t, k=5)
    ref = [len(brute_knn(z, z[i], i, 5) & brute_knn(z, z_t[i], i, 5)) / 5 for i in range(60)]
    np.testing.assert_allclose(got, ref)
    np.testing.assert_allclose(knn_retention(z, z, k=5), 1.0)
    with pytest.raises(ConfigError, match=r"k \(neighbours\) must be an int in \[1, 59\]"):
        knn_retention(z, z_t, k=60)


def test_consistency_scores_match_torch_distributions():
    model = tiny("vae")
    x = RNG.uniform(size=(30, 1, 8, 8)).astype(np.float32)
    tset = TRANSFORM_SETS["simple"]
    scores = consistency_scores(model, x, tset, seed=4, k=3)
    assert list(scores) == ["rotate", "translate", "scale", "all"]
    with torch.no_grad():
        mu, lv = model.posterior(torch.from_numpy(x))
        x_t = tset(torch.from_numpy(x), generator=torch.Generator().manual_seed(4 + 3))
        mu_t, lv_t = model.posterior(x_t)
    ref = kl_divergence(Normal(mu_t, (0.5 * lv_t).exp()), Normal(mu, (0.5 * lv).exp())).sum(1)
    np.testing.assert_allclose(scores["all"].kl, ref.numpy(), rtol=1e-4, atol=1e-6)
    dist = np.linalg.norm((mu_t - mu).numpy(), axis=1) / np.median(pdist(mu.numpy()))
    np.testing.assert_allclose(scores["all"].displacement, dist, rtol=1e-4)
    assert scores["all"].summary()["knn"] == pytest.approx(scores["all"].knn.mean())


def test_report_for_a_vae_and_for_a_deterministic_encoder():
    x = RNG.uniform(size=(40, 1, 8, 8)).astype(np.float32)
    y = np.arange(40) % 2
    rep = posterior_report(
        tiny("vae"), x, y, x_train=x, y_train=y, transforms="simple", nll_samples=5, k=3
    )
    assert rep.mi is not None
    assert rep.nll is not None
    assert rep.accuracy is not None
    assert rep.kl_per_dim.shape == (3,)
    assert 0 <= rep.au <= 3
    row = rep.row()
    assert {"AU", "MI (nats)", "NLL (nats)", "accuracy", "KL[all]", "kNN kept[rotate]"} <= set(row)
    det = posterior_report(tiny("ae"), x, transforms="simple", k=3)
    assert det.mi is None
    assert det.nll is None
    assert det.kl_per_dim is None
    assert det.accuracy is None
    assert det.consistency["all"].kl is None
    assert det.consistency["all"].displacement.shape == (40,)


def test_metrics_refuse_bad_input():
    with pytest.raises(ConfigError, match=r"needs a Gaussian posterior and a likelihood"):
        importance_nll(tiny("ae"), np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ConfigError, match=r"n_samples \(S\) must be an int >= 1"):
        importance_nll(tiny("vae"), np.zeros((2, 1, 8, 8), np.float32), n_samples=0)
    with pytest.raises(DataShapeError, match=r"mu \(4, 2\) and logvar \(4, 3\)"):
        mutual_information(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(DataShapeError, match=r"expects images of shape \(n, 1, 8, 8\)"):
        posterior_arrays(tiny("vae"), np.zeros((2, 1, 9, 9), np.float32))
    with pytest.raises(ConfigError, match=r"colour jitter, which needs RGB"):
        posterior_report(tiny("vae"), np.zeros((4, 1, 8, 8), np.float32), transforms="textures")
