"""Shared pure loss terms and the training objective with the optional consistency term.

Consistency regularisation (CR-VAE; Sinha & Dieng, NeurIPS 2021; docs/methods.md),
implemented from the equations, not from the official code (which has known bugs):

    loss = -ELBO(x) - ELBO(t(x)) + lambda * KL( q(z|t(x)) || q(z|x) )

one random transformation t per sample (``lsx.data.transforms``), the KL in closed form for
diagonal Gaussians, summed over latent elements and averaged over the batch, with gradients
through both encoder passes (no stop-gradient). For a kind with a Gaussian posterior
(``posterior(x) -> (mu, logvar)``: ``vae``, beta-VAE via ``beta``, ``iwae``) ``-ELBO`` is the
kind's own ``loss`` (the k-sample bound for ``iwae``). For deterministic encoders (``ae``,
``dae``, ...) the term is the squared latent distance ``||encode(t(x)) - encode(x)||^2`` — an
lsx extension, not from the paper.

The term is a training option (``TrainConfig.consistency`` = lambda, ``transforms``,
``transform_strength``), so it works for every kind without touching the model files; the
trainer calls :func:`objective` for every step.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import TrainConfig
from lsx.data.transforms import TransformSet, resolve_set
from lsx.errors import ConfigError
from lsx.models.base import Losses

EXTENSION_NOTE = "lsx extension, not from the paper"
LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------ pure terms


def diag_gaussian_kl(
    mu_p: torch.Tensor, logvar_p: torch.Tensor, mu_q: torch.Tensor, logvar_q: torch.Tensor
) -> torch.Tensor:
    """KL( N(mu_p, exp(logvar_p)) || N(mu_q, exp(logvar_q)) ) per sample.

    Parameters
    ----------
    mu_p, logvar_p, mu_q, logvar_q : Tensors of shape (batch, *latent_shape)

    Returns
    -------
    Tensor of shape (batch,)
        Summed over every latent element (docs/methods.md:
        sum_d log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2).
    """
    kl = 0.5 * (logvar_q - logvar_p + (logvar_p.exp() + (mu_p - mu_q).pow(2)) / logvar_q.exp() - 1)
    return kl.flatten(1).sum(1)


def log_likelihood(
    x_hat: torch.Tensor, x: torch.Tensor, likelihood: str, *, normalised: bool = False
) -> torch.Tensor:
    """log p(x|z) per image, summed over the last three (C, H, W) dims.

    Parameters
    ----------
    x_hat : Tensor of shape (..., C, H, W)
        Decoder output in [0, 1] (Bernoulli means, or Gaussian means with sigma 1).
    x : Tensor broadcastable to ``x_hat``
    likelihood : {"bernoulli", "gaussian"}
        As the VAE config's ``likelihood``; Bernoulli is the BCE the VAE trains with (targets
        in [0, 1], logs clamped at -100 as torch's BCE).
    normalised : bool, default=False
        Add the Gaussian's ``-0.5 * log(2 pi)`` per pixel (training drops it; an NLL keeps it).

    Returns
    -------
    Tensor of shape (...)
    """
    if likelihood == "bernoulli":
        ll = -F.binary_cross_entropy(x_hat, x.expand_as(x_hat), reduction="none")
    elif likelihood == "gaussian":
        ll = -0.5 * (x_hat - x).pow(2) - (0.5 * LOG_2PI if normalised else 0.0)
    else:
        raise ConfigError(f"Unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'.")
    return ll.flatten(-3).sum(-1)


# ------------------------------------------------------------------------------ consistency


def consistency_kind(model: nn.Module) -> str:
    """``"kl"`` for a kind with ``posterior(x) -> (mu, logvar)``, else ``"latent_sq"``."""
    return "kl" if callable(getattr(model, "posterior", None)) else "latent_sq"


def describe_consistency(model: nn.Module) -> str:
    """What the ``consistency`` term of this model measures, in words (for logs and the app)."""
    if consistency_kind(model) == "kl":
        return "KL(q(z|t(x)) || q(z|x)), closed form (docs/methods.md)"
    return f"squared latent distance ||encode(t(x)) - encode(x)||^2 ({EXTENSION_NOTE})"


@contextlib.contextmanager
def _recording(model: nn.Module, method: str, x: torch.Tensor) -> Iterator[list[Any]]:
    """Record what ``model.<method>`` returns for exactly the tensor ``x`` while inside.

    Lets the objective reuse the posterior that ``model.loss`` computed, instead of a third
    encoder pass (docs/methods.md asks for two). The method is shadowed on the instance only and
    restored on exit.
    """
    seen: list[Any] = []
    original = getattr(model, method)

    def recording(inp: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        out = original(inp, *args, **kwargs)
        if inp is x and not seen:
            seen.append(out)
        return out

    object.__setattr__(model, method, recording)
    try:
        yield seen
    finally:
        object.__delattr__(model, method)


def _is_gaussian(out: Any) -> bool:
    return (
        isinstance(out, tuple)
        and len(out) == 2
        and all(isinstance(t, torch.Tensor) for t in out)
        and out[0].shape == out[1].shape
    )


def _pass(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, method: str
) -> tuple[Losses, Any]:
    """``model.loss(x, y)`` and the latent (posterior or code) of ``x`` from the same pass."""
    with _recording(model, method, x) as seen:
        losses = model.loss(x, y)
    latent = seen[0] if seen else getattr(model, method)(x)  # e.g. a DAE encodes a noisy x
    return losses, latent


def check_objective(model: nn.Module, config: TrainConfig, dataset: str | None = None) -> None:
    """Raise ConfigError now if the consistency options cannot work for this model and data.

    Parameters
    ----------
    model : nn.Module
        An lsx model (``config.input_shape``, ``loss``, ``encode``).
    config : TrainConfig
    dataset : str or None
        The dataset's spec, for the transform set's suitability (e.g. no flips for digits).
    """
    if config.consistency > 0:
        resolve_set(config.transforms, model.config.input_shape, dataset)


def objective(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    *,
    dataset: str | None = None,
    transform: TransformSet | None = None,
) -> Losses:
    """The training loss of one batch: ``model.loss``, plus the consistency term when on.

    Parameters
    ----------
    model : nn.Module
        Any lsx model; ``model.loss`` must be a mean over the batch.
    x : Tensor of shape (batch, C, H, W)
    y : Tensor or None
        Labels as the trainer passes them; t(x) keeps the labels of x.
    config : TrainConfig or None
        ``consistency`` (lambda), ``transforms``, ``transform_strength``. None or lambda = 0:
        exactly ``model.loss(x, y)``.
    dataset : str or None
        The dataset's spec (suitability of the transform set).
    transform : TransformSet or None
        Overrides ``config.transforms`` (tests, benchmarks).

    Returns
    -------
    Losses
        ``total = loss(x) + loss(t(x)) + lambda * D``; terms are the model's terms averaged over
        the two passes, plus ``consistency`` = D, the batch mean of
        KL(q(z|t(x)) || q(z|x)) (Gaussian posterior) or of the squared latent distance
        (deterministic encoder, an lsx extension).
    """
    if config is None or config.consistency == 0:
        return model.loss(x, y)
    tset = transform or resolve_set(config.transforms, model.config.input_shape, dataset)
    with torch.no_grad():
        x_t = tset(x, strength=config.transform_strength)  # (batch, C, H, W), one t per sample
    method = "posterior" if consistency_kind(model) == "kl" else "encode"
    plain, lat = _pass(model, x, y, method)
    moved, lat_t = _pass(model, x_t, y, method)
    if method == "posterior" and _is_gaussian(lat) and _is_gaussian(lat_t):
        d = diag_gaussian_kl(lat_t[0], lat_t[1], lat[0], lat[1])  # KL(q(z|t(x)) || q(z|x))
    else:
        if method == "posterior":  # a posterior that is no (mu, logvar) pair: compare codes
            lat, lat_t = model.encode(x), model.encode(x_t)
        d = (lat_t - lat).pow(2).flatten(1).sum(1)
    consistency = d.mean()
    terms = {k: 0.5 * (v + moved.terms[k]) for k, v in plain.terms.items() if k in moved.terms}
    terms["consistency"] = consistency
    total = plain.total + moved.total + config.consistency * consistency
    return Losses(total=total, terms=terms)
