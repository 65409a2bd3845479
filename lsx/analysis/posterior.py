"""Posterior health metrics and the full report (docs/methods.md).

- active units (Burda et al. 2016): dimension d is active if Cov_x(E_q[z_d|x]) > threshold;
- mutual information I_q(x; z) with the aggregate-posterior estimator (He et al. 2019 style);
- importance-sampled negative log-likelihood with q(z|x) as proposal, S samples;
- per-dimension KL(q(z_d|x) || N(0, 1)), averaged over the data;
- downstream accuracy: logistic regression on posterior means, fit on train, scored on test;
- :func:`posterior_report`: all of these plus the consistency metrics of
  :mod:`lsx.analysis.consistency` (re-exported here).

Pure functions: a model (eval mode, never modified) plus arrays in, arrays, floats or frozen
dataclasses out; every random draw comes from a seeded ``torch.Generator`` or NumPy ``Generator``.
Metrics that need a Gaussian posterior (``posterior(x) -> (mu, logvar)``) are None for
deterministic encoders; NLL also needs the model's ``likelihood``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

# consistency metrics live in lsx.analysis.consistency, the posterior arrays in
# lsx.analysis.embedding; both are re-exported here under their old names
from lsx.analysis.consistency import DEFAULT_NEIGHBORS as DEFAULT_NEIGHBORS
from lsx.analysis.consistency import MAX_PAIRS as MAX_PAIRS
from lsx.analysis.consistency import PairProjection as PairProjection
from lsx.analysis.consistency import TransformScores as TransformScores
from lsx.analysis.consistency import consistency_scores as consistency_scores
from lsx.analysis.consistency import knn_retention as knn_retention
from lsx.analysis.consistency import pair_projection as pair_projection
from lsx.analysis.consistency import transform_gallery as transform_gallery
from lsx.analysis.consistency import transform_variants as transform_variants
from lsx.analysis.consistency import typical_distance as typical_distance
from lsx.analysis.embedding import _as_2d, _check_batch, _tensor, check_images
from lsx.analysis.embedding import has_posterior as has_posterior
from lsx.analysis.embedding import posterior_arrays as posterior_arrays
from lsx.data.transforms import resolve_set
from lsx.errors import ConfigError, DataShapeError
from lsx.losses import LOG_2PI, log_likelihood

DEFAULT_AU_THRESHOLD = 0.01  # docs/methods.md (Burda et al.)
DEFAULT_NLL_SAMPLES = 100  # bench/consistency.py: seed std 0.07 nats; 0.8 above S = 1000


def _pair(mu: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, logvar = _as_2d(mu, "mu"), _as_2d(logvar, "logvar")
    if mu.shape != logvar.shape:
        raise DataShapeError(f"mu {mu.shape} and logvar {logvar.shape} must have the same shape.")
    return mu, logvar


# ------------------------------------------------------------------------------ metrics


def active_units(mu: np.ndarray, threshold: float = DEFAULT_AU_THRESHOLD) -> tuple[int, np.ndarray]:
    """Number of active latent dimensions and each dimension's activity.

    Parameters
    ----------
    mu : ndarray of shape (n_samples, latent_dim)
        Posterior means E_q[z|x].
    threshold : float, default=0.01
        A dimension is active if the variance of its mean over the data exceeds it.

    Returns
    -------
    n_active : int
    variances : ndarray of shape (latent_dim,)
        Cov_x(E_q[z_d|x]) (unbiased, as ``torch.var`` in docs/methods.md).
    """
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"The active-unit threshold must be a number >= 0; got {threshold!r}.")
    variances = _as_2d(mu, "mu").var(axis=0, ddof=1)
    return int((variances > threshold).sum()), variances


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z_d|x) || N(0, 1)) per latent dimension, averaged over samples; shape (latent_dim,)."""
    mu, logvar = _pair(mu, logvar)
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)


def mutual_information(
    mu: np.ndarray, logvar: np.ndarray, *, seed: int = 0, chunk: int = 256
) -> float:
    """I_q(x; z) = E_x KL(q(z|x) || q(z)), in nats, always in [0, log N].

    q(z) is the aggregate posterior over the N given points, the mixture
    q(z) = (1/N) sum_m q(z|x_m), *including* the point itself. Each KL is estimated at one
    sample z_n ~ q(z|x_n) (``eps = torch.randn((n, d), generator=Generator().manual_seed(seed),
    float64)``) by the log-ratio r_n = log q(z_n|x_n) - log q(z_n), with both densities taken
    from the same (N x N) matrix of log q(z_i|x_j), so the own density is one term of the
    mixture.

    Bounds. Upper: q(z_n) >= q(z_n|x_n) / N (one term of a sum of non-negative terms), so
    r_n <= log N for every sample, and so is their mean; the exact I obeys the same bound
    because KL(q_n || q) = E_{q_n}[r] with r <= log N everywhere. Lower: every KL is >= 0, so
    I >= 0; a one-sample estimate can fall below 0 by noise (when the posteriors overlap
    almost completely), and the stated rule is to report max(0, estimate). When every
    posterior is the same (the encoder ignores x), r_n = 0 (up to rounding) for every n. The
    result is clipped to [0, log N] (the upper clip only absorbs float rounding).

    Parameters
    ----------
    mu, logvar : ndarrays of shape (n_samples, latent_dim)
    seed : int, default=0
    chunk : int, default=256
        Rows of z per (chunk, N) block of log-densities; memory only.

    Returns
    -------
    float
    """
    mu_np, lv_np = _pair(mu, logvar)
    n, d = mu_np.shape
    m, lv = torch.from_numpy(mu_np), torch.from_numpy(lv_np)
    eps = torch.randn((n, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = m + (0.5 * lv).exp() * eps
    inv_var = (-lv).exp()  # (N, d)
    # log q(z_i|x_j) = -0.5 sum_d (z_id - mu_jd)^2 / var_jd + const_j, expanded into matrix
    # products: sum_d z_id^2 / var_jd - 2 z_id mu_jd / var_jd + mu_jd^2 / var_jd
    const = -0.5 * (d * LOG_2PI + lv.sum(1) + (m.pow(2) * inv_var).sum(1))  # (N,)
    ratio = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, chunk):
        zc = z[start : start + chunk]  # (c, d)
        quad = zc.pow(2) @ inv_var.T - 2.0 * zc @ (m * inv_var).T  # (c, N)
        log_dens = -0.5 * quad + const[None]  # log q(z_i|x_j)
        rows = torch.arange(len(zc))
        own = log_dens[rows, start + rows]  # log q(z_i|x_i), a term of the mixture below
        ratio[start : start + chunk] = own - (torch.logsumexp(log_dens, 1) - math.log(n))
    return float(min(max(float(ratio.mean()), 0.0), math.log(n)))


def importance_nll(
    model: nn.Module,
    x: np.ndarray,
    *,
    n_samples: int = DEFAULT_NLL_SAMPLES,
    seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:
    """-log p(x) per image by importance sampling with q(z|x) as the proposal, in nats.

    log p(x) ~ log (1/S) sum_s p(x|z_s) p(z_s) / q(z_s|x), z_s ~ q(z|x) (docs/methods.md). The
    likelihood is the model's ``config.likelihood``, normalised (a Gaussian keeps its
    -0.5 log(2 pi) per pixel; Bernoulli on grey levels is the BCE the model trains with).

    Parameters
    ----------
    model : nn.Module
        With ``posterior``, ``decode`` and ``config.likelihood``; eval mode.
    x : ndarray of shape (n_samples, C, H, W)
    n_samples : int, default=100
        S, importance samples per image.
    seed : int, default=0
    batch_size : int, default=64
        Images per batch; each decode call handles about 512 images.

    Returns
    -------
    ndarray of shape (n_images,), float64

    Raises
    ------
    ConfigError
        The model has no Gaussian posterior or no likelihood, or ``n_samples`` < 1.
    """
    likelihood = getattr(model.config, "likelihood", None)
    if not has_posterior(model) or likelihood is None:
        raise ConfigError(
            f"An importance-sampled NLL needs a Gaussian posterior and a likelihood; the "
            f"{model.config.kind} model has {'no likelihood' if has_posterior(model) else 'none'}."
            " Use a vae or iwae checkpoint."
        )
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise ConfigError(f"n_samples (S) must be an int >= 1; got {n_samples!r}. Use e.g. 100.")
    _check_batch(batch_size)
    x = check_images(model, x)
    gen = torch.Generator().manual_seed(seed)
    out = np.empty(len(x), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = _tensor(x[start : start + batch_size])  # (B, C, H, W)
            mu, lv = model.posterior(xb)
            std, b = (0.5 * lv).exp(), len(xb)
            per = max(1, 512 // b)  # samples per decode call: ~512 images is fastest on CPU
            logw = []
            for s0 in range(0, n_samples, per):
                c = min(per, n_samples - s0)
                eps = torch.randn((c, *mu.shape), generator=gen)  # (c, B, *latent_shape)
                z = mu + std * eps
                x_hat = model.decode(z.flatten(0, 1)).unflatten(0, (c, b))  # (c, B, C, H, W)
                log_px = log_likelihood(x_hat, xb, likelihood, normalised=True)  # (c, B)
                log_pz = (-0.5 * (z.pow(2) + LOG_2PI)).flatten(2).sum(-1)
                log_qz = (-0.5 * (eps.pow(2) + lv + LOG_2PI)).flatten(2).sum(-1)
                logw.append((log_px + log_pz - log_qz).double())
            log_p = torch.logsumexp(torch.cat(logw), 0) - math.log(n_samples)
            out[start : start + b] = (-log_p).numpy()
    return out


def downstream_accuracy(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int = 0,
    max_iter: int = 2000,
) -> float:
    """Test accuracy of a logistic regression fit on the train split's posterior means.

    Features are standardised with the train split's mean and scale (NOT FOUND in P3; lsx
    default, it only helps lbfgs converge). docs/methods.md: ``LogisticRegression(max_iter=2000)``.

    Returns
    -------
    float
        Share of test samples classified correctly.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train, z_test = _as_2d(z_train, "z_train"), _as_2d(z_test, "z_test")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(y_train) != len(z_train) or len(y_test) != len(z_test):
        raise DataShapeError(
            f"Got {len(z_train)} train codes with {len(y_train)} labels and {len(z_test)} test "
            f"codes with {len(y_test)} labels; pass one label per code."
        )
    if len(np.unique(y_train)) < 2:
        raise DataShapeError("Downstream accuracy needs at least two classes in the train split.")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    with threadpool_limits(1):  # BLAS threads: 30x slower on 2 shared cores (measured)
        clf.fit(z_train, y_train)
        return float((clf.predict(z_test) == y_test).mean())


# ------------------------------------------------------------------------------ the suite


@dataclass(frozen=True, eq=False)
class PosteriorReport:
    """Every metric of one model on one set of evaluation points."""

    kind: str
    n_points: int
    latent_numel: int
    z: np.ndarray  # (n, latent_numel) posterior means of the evaluation points
    au: int
    au_threshold: float
    unit_variance: np.ndarray  # (latent_numel,) Cov_x(E[z_d|x])
    mi: float | None
    nll: float | None  # mean over points, nats
    nll_samples: int
    kl_per_dim: np.ndarray | None  # (latent_numel,)
    accuracy: float | None
    transform_set: str
    strength: float
    consistency: dict[str, TransformScores]
    seconds: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The headline numbers as one flat dict (a table row)."""
        row: dict[str, Any] = {
            "AU": self.au,
            "latent dims": self.latent_numel,
            "MI (nats)": self.mi,
            "NLL (nats)": self.nll,
            "KL to prior": None if self.kl_per_dim is None else float(self.kl_per_dim.sum()),
            "accuracy": self.accuracy,
        }
        for name, scores in self.consistency.items():
            s = scores.summary()
            row[f"KL[{name}]"] = s["kl"]
            row[f"displacement[{name}]"] = s["displacement"]
            row[f"kNN kept[{name}]"] = s["knn"]
        return row


def posterior_report(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    x_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
    transforms: str = "",
    strength: float = 1.0,
    dataset: str | None = None,
    threshold: float = DEFAULT_AU_THRESHOLD,
    nll_samples: int = DEFAULT_NLL_SAMPLES,
    k: int = DEFAULT_NEIGHBORS,
    seed: int = 0,
) -> PosteriorReport:
    """The full metric suite on evaluation points ``x`` (usually the test split).

    Parameters
    ----------
    model : nn.Module
        Eval mode; deterministic encoders get AU (of their codes), accuracy and consistency
        (displacement, kNN), and None for MI, NLL, KL and pair KL.
    x, y : evaluation images (n, C, H, W) and labels (n,) (labels only for accuracy)
    x_train, y_train : images and labels the logistic regression is fit on; accuracy is None
        without them.
    transforms, strength, dataset : the transform set (``""`` = the data's default), its
        strength, and the dataset spec (suitability check)
    threshold : active-unit threshold
    nll_samples : S of the importance-sampled NLL; 0 skips the NLL
    k : neighbours of the kNN retention
    seed : every random draw

    Returns
    -------
    PosteriorReport
    """
    x = check_images(model, x)
    tset = resolve_set(transforms, model.config.input_shape, dataset)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    mu, lv = posterior_arrays(model, x)
    n_active, variances = active_units(mu, threshold)
    seconds["encode+AU"] = time.perf_counter() - t0
    mi = kl_dims = nll = acc = None
    if lv is not None:
        t0 = time.perf_counter()
        mi, kl_dims = mutual_information(mu, lv, seed=seed), kl_per_dimension(mu, lv)
        seconds["MI+KL"] = time.perf_counter() - t0
        if nll_samples and getattr(model.config, "likelihood", None) is not None:
            t0 = time.perf_counter()
            nll = float(importance_nll(model, x, n_samples=nll_samples, seed=seed).mean())
            seconds["NLL"] = time.perf_counter() - t0
    if x_train is not None and y_train is not None and y is not None:
        t0 = time.perf_counter()
        z_train, _ = posterior_arrays(model, x_train)
        acc = downstream_accuracy(z_train, y_train, mu, y, seed=seed)
        seconds["accuracy"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = consistency_scores(
        model, x, tset, strength=strength, seed=seed, k=k, posterior=(mu, lv)
    )
    seconds["consistency"] = time.perf_counter() - t0
    return PosteriorReport(
        kind=model.config.kind,
        n_points=len(x),
        latent_numel=mu.shape[1],
        z=mu,
        au=n_active,
        au_threshold=float(threshold),
        unit_variance=variances,
        mi=mi,
        nll=nll,
        nll_samples=int(nll_samples),
        kl_per_dim=kl_dims,
        accuracy=acc,
        transform_set=tset.name,
        strength=float(strength),
        consistency=scores,
        seconds=seconds,
    )
