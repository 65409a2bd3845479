"""The headline metrics of one model on one image set, chosen by what the model can do.

Every kind gets reconstruction in common units (per-pixel MSE, PSNR and SSIM of
``decode(encode(x))``, :mod:`lsx.analysis.quality`), so two runs of different kinds can be set
side by side. On top, by capability (:data:`lsx.models.MODELS`, never ``kind ==``):

- configured centres (``sae``): nearest-centre accuracy per label attribute, and the share of
  points inside their own class's sphere (a geometry check, *not* an accuracy: a point outside
  every sphere can still be nearest its own centre);
- a Gaussian posterior (``vae``, ``iwae``): active units, mutual information I(x; z) and the
  importance-sampled negative log-likelihood, in nats (:mod:`lsx.analysis.posterior`);
- sparse codes over atoms (``scvae``) or a codebook (``vqvae``): how many atoms or codes are
  used, their perplexity, and for atoms the mean number active per position
  (:mod:`lsx.analysis.atoms`).

Pure: a model in eval mode plus arrays in, a frozen dataclass out; the seed is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from lsx.analysis.atoms import atom_stats, code_stats, has_atoms, has_codebook
from lsx.analysis.cluster_space import configured_space, is_configured
from lsx.analysis.clusters import in_sphere_rates, nearest_center_accuracy
from lsx.analysis.embedding import encode_array, posterior_arrays
from lsx.analysis.posterior import (
    DEFAULT_NLL_SAMPLES,
    active_units,
    importance_nll,
    mutual_information,
)
from lsx.analysis.quality import reconstruction_quality
from lsx.models import MODELS, display_label


@dataclass(frozen=True)
class Metric:
    """One headline number.

    Attributes
    ----------
    name : str
        What it is, e.g. ``"nearest-centre accuracy (digit)"``.
    value : float or int
    unit : str
        ``"dB"``, ``"nats"``, ``"per pixel"``, ``"share"``, ``"count"`` ...
    note : str
        How to read it (one short phrase).
    """

    name: str
    value: float | int
    unit: str = ""
    note: str = ""


@dataclass(frozen=True)
class Headline:
    """The headline metrics of one model on ``n_samples`` images (:func:`headline_metrics`)."""

    kind: str
    label: str
    n_samples: int
    metrics: tuple[Metric, ...]

    def value(self, name: str) -> float | int:
        """The value of the metric called ``name`` (KeyError naming the known ones otherwise)."""
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(f"no metric {name!r}; known: {', '.join(m.name for m in self.metrics)}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: kind, label, n_samples and one ``{name, value, unit, note}`` per metric."""
        return {
            "kind": self.kind,
            "label": self.label,
            "n_samples": self.n_samples,
            "metrics": [
                {"name": m.name, "value": m.value, "unit": m.unit, "note": m.note}
                for m in self.metrics
            ],
        }


def _reconstruction(model: nn.Module, x: np.ndarray) -> list[Metric]:
    q = reconstruction_quality(model, x).summary()
    return [
        Metric("reconstruction MSE", q["mse"], "per pixel", "lower is better; same for all kinds"),
        Metric("PSNR", q["psnr"], "dB", "higher is better (10 log10(1 / MSE), per image)"),
        Metric("SSIM", q["ssim"], "", "1 = structurally identical"),
    ]


def _centres(
    model: nn.Module,
    x: np.ndarray,
    labels: Mapping[str, np.ndarray],
    label_names: Mapping[str, Sequence[str]],
) -> list[Metric]:
    space = configured_space(model, label_names)
    z = encode_array(model, x)
    out = [
        Metric(f"nearest-centre accuracy ({attr})", acc, "share", "held-out classes left out")
        for attr, acc in nearest_center_accuracy(space, z, labels).items()
    ]
    for attr, rates in in_sphere_rates(space, z, labels).items():
        out.append(
            Metric(
                f"inside own sphere ({attr})", float(np.nanmean(rates)), "share",
                "share within its class's radius, mean over classes; not an accuracy",
            )
        )  # fmt: skip
    return out


def _posterior(model: nn.Module, x: np.ndarray, nll_samples: int, seed: int) -> list[Metric]:
    mu, logvar = posterior_arrays(model, x)
    n_active, _ = active_units(mu)
    out = [
        Metric("active units", int(n_active), f"of {mu.shape[1]}", "Cov_x E[z_d|x] > 0.01"),
        Metric("mutual information I(x; z)", mutual_information(mu, logvar, seed=seed), "nats",
               f"aggregate-posterior estimate; saturates near log n = {math.log(len(x)):.2f}"),
    ]  # fmt: skip
    if nll_samples > 0 and getattr(model.config, "likelihood", None) is not None:
        nll = importance_nll(model, x, n_samples=nll_samples, seed=seed)
        out.append(Metric("NLL", float(nll.mean()), "nats",
                          f"importance-sampled, S = {nll_samples}; lower is better"))  # fmt: skip
    return out


def _dictionary(model: nn.Module, x: np.ndarray, what: str) -> list[Metric]:
    if has_atoms(model):
        stats = atom_stats(model, x)
        total = stats.n_atoms
        extra = [Metric("atoms active per position", float(stats.l0.mean()), "count", "mean L0")]
    else:
        stats = code_stats(model, x)
        total, extra = stats.n_codes, []
    used = int((stats.counts > 0).sum())
    return [
        Metric(f"{what} used", used, f"of {total}", "active at least once on these samples"),
        Metric(f"{what} perplexity", stats.perplexity, "count", "effective number in use"),
        *extra,
    ]


def headline_metrics(
    model: nn.Module,
    x: np.ndarray,
    labels: Mapping[str, np.ndarray] | None = None,
    label_names: Mapping[str, Sequence[str]] | None = None,
    *,
    nll_samples: int = DEFAULT_NLL_SAMPLES,
    seed: int = 0,
) -> Headline:
    """The kind's headline metrics of ``model`` on the images ``x`` (usually the test split).

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode on CPU.
    x : ndarray of shape (n_samples, C, H, W)
        Images in [0, 1].
    labels : mapping attribute -> ndarray of shape (n_samples,), or None
        Class labels; models with configured centres need them for their accuracy.
    label_names : mapping attribute -> class names, or None
        The dataset's label names (the centres are named after them).
    nll_samples : int, default=100
        Importance samples per image of the NLL (Gaussian posteriors); 0 skips the NLL.
    seed : int, default=0
        Every random draw (MI, NLL).

    Returns
    -------
    Headline
        Reconstruction first, then the kind's own metrics.

    Raises
    ------
    DataShapeError
        ``x`` does not fit the model, or the labels do not fit its configured centres.
    """
    spec = MODELS[model.config.kind]
    metrics = _reconstruction(model, x)
    if spec.has_centres and is_configured(model) and labels and label_names:
        metrics += _centres(model, x, labels, label_names)
    if spec.has_posterior:
        metrics += _posterior(model, x, int(nll_samples), seed)
    if spec.has_dictionary and (has_atoms(model) or has_codebook(model)):
        metrics += _dictionary(model, x, spec.dictionary)
    return Headline(model.config.kind, display_label(model.config), len(x), tuple(metrics))
