"""Out-of-distribution (OOD) detection for every kind: is an image like the data the model was
trained on, or something else (a photo given to a digit model, noise, a blank or inverted image)?

Signals (each measured on a reference set of held-out images, e.g. the test split):

- ``recon``: per-pixel reconstruction MSE, ``decode(encode(x))`` against ``x``. Two-sided: an
  image reconstructed far *better* than any held-out image is atypical too (a blank image on
  an autoencoder; the typicality argument of Nalisnick et al., 2019, "Detecting
  out-of-distribution inputs to deep generative models using typicality").
- ``knn``: Euclidean distance from the latent to its ``k``-th nearest *training* latent
  (:mod:`lsx.analysis.knn`). Upper tail only: being near training data is never suspicious.
- ``kl`` (Gaussian posteriors only, :func:`lsx.analysis.embedding.has_posterior`):
  KL(q(z|x) || N(0, I)) of the encoder's posterior. Two-sided (typicality again): a posterior
  much tighter or much closer to the prior than any held-out image's is atypical.
- ``sphere`` (configured ``sae`` spaces only): distance to the nearest configured centre in
  units of that sphere's OOD distance (:mod:`lsx.analysis.cluster_space`), largest over the
  label attributes. The decoder-free sphere rule, calibrated like the other signals.
- ``pixels``: distance from an image's low-level statistics (per channel: mean, spread,
  5th/95th percentile, mean absolute difference of neighbouring pixels; standardised) to the
  ``PIXEL_K``-th nearest reference image's (a kNN, since datasets are mixtures of classes).
  Needed because a model that generalises well reconstructs and encodes unseen images well:
  on the procedural textures every autoencoder reconstructs a downsized photo or an inverted
  texture about as well as a test texture, and their latents land among the training ones;
  their colours, contrast and edges still differ from every texture's.

Combination rule (:class:`OodDetector`). Each signal ``s`` is compared, in log space, with the
reference: ``d = (log s - median) / (q95 - median)`` above the median and, for two-sided
signals, ``(median - log s) / (median - q05)`` below it, so ``d = 1`` at the reference's 95th
(or 5th) percentile. The OOD *score* is the largest ``d`` over the signals. The threshold is
split-conformal: the medians and quantiles come from one half of the reference (seeded split),
and the threshold is the ``ceil((m + 1) (1 - alpha))``-th smallest score of the other ``m``
images, so a new image from the reference distribution scores above it with probability at
most ``alpha`` (1 % by default; ``1 / (m + 1)`` when ``m < 1 / alpha - 1``). A signal that does
not vary on the reference (e.g. the kNN distance of a non-spatial VQ-VAE, whose latents are
codebook vectors) is left out, and ``signals_`` says which ones were used.

Pure: a model (eval mode, shared read-only) plus arrays in; arrays and fitted objects out; the
seed is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from torch import nn

from lsx.analysis.cluster_space import RULE_CONFIGURED, ClusterSpace, lookup
from lsx.analysis.embedding import Embedding, embed, has_posterior, posterior_arrays
from lsx.analysis.knn import KnnIndex, build_index
from lsx.errors import ConfigError, DataShapeError

SIGNALS = {  # name -> (description, two-sided)
    "recon": ("reconstruction error", True),
    "knn": ("distance to the nearest training latents", False),
    "kl": ("posterior KL to the prior", True),
    "sphere": ("distance to the nearest configured sphere", False),
    "pixels": ("pixel statistics", False),
}
KNN_K = 5  # the knn signal: distance to the 5th nearest training latent
PIXEL_K = 2  # the pixels signal: distance to the 2nd nearest reference image's statistics
ALPHA = 0.01  # default false-positive rate on held-out data (the threshold's promise)
UPPER_Q, LOWER_Q = 0.95, 0.05  # the reference quantiles where a signal's deviation is 1
_SPREAD_MIN = 1e-6  # log-space spread below this: the signal does not vary, it is left out


def pixel_statistics(x: np.ndarray) -> np.ndarray:
    """Low-level statistics of images: per channel the mean, standard deviation, 5th and 95th
    percentile, and mean absolute difference of horizontal and of vertical neighbours.

    Parameters
    ----------
    x : ndarray of shape (n, C, H, W)

    Returns
    -------
    ndarray of shape (n, 6 * C), float64
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), x.shape[1], -1)  # (n, C, H*W)
    q05, q95 = np.quantile(flat, [0.05, 0.95], axis=2)
    dx = np.abs(np.diff(x, axis=3)).mean(axis=(2, 3))  # (n, C)
    dy = np.abs(np.diff(x, axis=2)).mean(axis=(2, 3))
    parts = [flat.mean(2), flat.std(2), q05, q95, dx, dy]
    if x.shape[1] > 1:  # colour: saturation (max - min over channels) per pixel, mean and spread
        sat = flat.max(axis=1) - flat.min(axis=1)  # (n, H*W)
        parts += [sat.mean(1, keepdims=True), sat.std(1, keepdims=True)]
    return np.concatenate(parts, axis=1)


def sphere_distance(space: ClusterSpace, z: np.ndarray) -> np.ndarray:
    """Distance to the nearest configured centre over that class's OOD distance (> 1: the
    sphere rule flags it), largest over the attributes; shape (n,)."""
    out = np.zeros(len(z))
    for attr, res in zip(space.attributes, lookup(space, z), strict=True):
        thr = np.where(attr.ood_threshold > 0, attr.ood_threshold, np.inf)
        out = np.maximum(out, (res.distances / thr[None, :]).min(axis=1))
    return out


def ood_signals(
    model: nn.Module,
    x: np.ndarray,
    z_train: np.ndarray | KnnIndex,
    *,
    space: ClusterSpace | None = None,
    k: int = KNN_K,
    emb: Embedding | None = None,
) -> dict[str, np.ndarray]:
    """Every OOD signal the model has, for each image.

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode.
    x : ndarray of shape (n, *input_shape)
    z_train : ndarray of shape (n_train, latent_numel), or a KnnIndex over them
        The model's training latents (the ``knn`` signal's database).
    space : ClusterSpace, optional
        The run's calibrated cluster space; a configured one adds the ``sphere`` signal.
    k : int, default=KNN_K
    emb : Embedding, optional
        ``embed(model, x)`` when already computed (saves one pass).

    Returns
    -------
    dict of name -> ndarray of shape (n,)
        ``recon``, ``knn`` and ``pixels`` always, ``kl`` for a model with a Gaussian
        posterior, ``sphere`` for a configured space. ``pixels`` holds the raw statistics
        ``(n, 6 * C)`` here; the detector turns them into one distance.
    """
    emb = embed(model, x) if emb is None else emb
    index = z_train if isinstance(z_train, KnnIndex) else build_index(z_train, n_queries=len(x))
    if index.dim != emb.z.shape[1]:
        raise DataShapeError(
            f"The training latents are {index.dim}-dimensional but the model encodes to "
            f"{emb.z.shape[1]}; pass the latents of this checkpoint's training split."
        )
    kk = max(1, min(int(k), index.n_db))
    _, dist = index.query(emb.z, kk)
    out = {"recon": emb.recon_error.astype(np.float64), "knn": dist[:, kk - 1]}
    if has_posterior(model):
        mu, logvar = posterior_arrays(model, x)
        mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
        out["kl"] = 0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar).sum(axis=1)
    if space is not None and space.rule == RULE_CONFIGURED:
        out["sphere"] = sphere_distance(space, emb.z)
    out["pixels"] = pixel_statistics(x)
    return out


def _check_signals(signals: Mapping[str, np.ndarray], known: tuple[str, ...] | None) -> int:
    names = tuple(signals)
    unknown = [s for s in names if s not in SIGNALS]
    if not names or unknown:
        raise DataShapeError(
            f"OOD signals must be a non-empty mapping with keys among {sorted(SIGNALS)}; got "
            f"{sorted(names)}. Compute them with ood_signals."
        )
    if known is not None and any(s not in signals for s in known):
        raise DataShapeError(
            f"The detector was fitted on the signals {list(known)}; got {sorted(names)}. "
            "Compute them with ood_signals on the same model (and cluster space)."
        )
    shapes = {name: np.shape(v) for name, v in signals.items()}
    lengths = {sh[0] if sh else None for sh in shapes.values()}
    dims_ok = all(len(sh) == (2 if name == "pixels" else 1) for name, sh in shapes.items())
    if len(lengths) != 1 or not dims_ok:
        raise DataShapeError(
            f"Every OOD signal must be one value per image (pixels: one row); got shapes {shapes}."
        )
    if any(not np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in signals.values()):
        raise DataShapeError("OOD signals hold NaN or Inf; check the images and the model.")
    return int(next(iter(lengths)))


class OodDetector:
    """One calibrated OOD score from several signals (see the module docstring for the rule).

    Parameters
    ----------
    alpha : float, default=ALPHA
        Target false-positive rate on data like the reference, in (0, 0.5).
    seed : int, default=0
        Seeds the split of the reference into a scaling half and a threshold half.

    Attributes
    ----------
    signals_ : tuple of str
        The signals used (those that vary on the reference).
    pixel_mean_, pixel_std_ : ndarrays of shape (d,)
        Mean and standard deviation of the ``pixels`` statistics on the scaling half.
    pixel_db_ : ndarray of shape (n_scale, d)
        The scaling half's statistics, standardised: the ``pixels`` signal is the distance to
        the ``PIXEL_K``-th nearest of them.
    center_, upper_, lower_ : dict of name -> float
        Median, ``q95 - median`` and ``median - q05`` of ``log(s + eps_[name])``.
    eps_ : dict of name -> float
        Keeps ``log`` finite at 0 (1e-3 of the reference median, at least 1e-12).
    reference_ : dict of name -> ndarray
        Every reference value per signal, sorted (for percentiles).
    threshold_ : float
        Scores above it are flagged.
    alpha_ : float
        The false-positive rate the threshold promises: ``max(alpha, 1 / (m + 1))``.
    n_scale_, n_calibration_ : int
        Reference images used for scaling and for the threshold.
    """

    def __init__(self, alpha: float = ALPHA, seed: int = 0) -> None:
        self.alpha = alpha
        self.seed = seed

    def fit(self, signals: Mapping[str, np.ndarray], y: None = None) -> OodDetector:
        """Fit the per-signal scales and the threshold on reference images.

        Parameters
        ----------
        signals : mapping of name -> ndarray of shape (n_ref,)
            :func:`ood_signals` of held-out in-distribution images, n_ref >= 20.
        y : None
            Unused (sklearn convention).

        Returns
        -------
        self
        """
        if not isinstance(self.alpha, float | int) or not 0.0 < float(self.alpha) < 0.5:
            raise ConfigError(f"alpha must be a float in (0, 0.5), e.g. 0.01; got {self.alpha!r}.")
        n = _check_signals(signals, None)
        if n < 20:
            raise DataShapeError(
                f"Calibrating OOD needs at least 20 held-out images; got {n}. Use a dataset with "
                "a larger test split."
            )
        order = np.random.default_rng(self.seed).permutation(n)
        scale, cal = order[: n // 2], order[n // 2 :]
        if "pixels" in signals:  # statistics -> distance to the scale half's (standardised)
            stats = np.asarray(signals["pixels"], dtype=np.float64)[scale]
            self.pixel_mean_ = stats.mean(axis=0)
            self.pixel_std_ = stats.std(axis=0) + 1e-6
            self.pixel_db_ = (stats - self.pixel_mean_) / self.pixel_std_
        scalars = self._scalars(signals)
        if "pixels" in signals:  # the scale half against itself: leave each image out
            index = build_index(self.pixel_db_, method="exact")
            _, d = index.query(self.pixel_db_, PIXEL_K + 1)
            scalars["pixels"][scale] = d[:, PIXEL_K]
        self.eps_, self.center_, self.upper_, self.lower_ = {}, {}, {}, {}
        self.reference_ = {}
        used = []
        for name, v in scalars.items():
            self.reference_[name] = np.sort(v)
            eps = max(1e-3 * float(np.median(np.abs(v[scale]))), 1e-12)
            logs = np.log(np.maximum(v[scale], 0.0) + eps)
            lo, mid, hi = np.quantile(logs, [LOWER_Q, 0.5, UPPER_Q])
            self.eps_[name], self.center_[name] = eps, float(mid)
            self.upper_[name], self.lower_[name] = float(hi - mid), float(mid - lo)
            if self.upper_[name] > _SPREAD_MIN:
                used.append(name)
        if not used:
            raise DataShapeError(
                "No OOD signal varies on the reference images; they look identical to the model."
            )
        self.signals_ = tuple(used)
        scores = np.sort(self.score({s: np.asarray(v)[cal] for s, v in signals.items()}))
        m = len(scores)
        rank = min(math.ceil((m + 1) * (1.0 - float(self.alpha))), m)  # 1-based order statistic
        self.threshold_ = float(scores[rank - 1])
        self.alpha_ = max(float(self.alpha), 1.0 / (m + 1))
        self.n_scale_, self.n_calibration_ = len(scale), m
        return self

    def _scalars(self, signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One value per image and signal (``pixels``: Mahalanobis distance), float64."""
        out = {}
        for name, v in signals.items():
            v = np.asarray(v, dtype=np.float64)
            if name == "pixels":
                index = build_index(self.pixel_db_, method="exact")
                v = index.query((v - self.pixel_mean_) / self.pixel_std_, PIXEL_K)[1][:, -1]
            out[name] = v
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "signals_"):
            raise ConfigError("This OodDetector is not fitted yet; call fit(reference) first.")

    def deviations(self, signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per used signal, how far each image lies outside the reference (1 = its 95th
        percentile, or 5th for a two-sided signal's low side; 0 inside).

        Returns
        -------
        dict of name -> ndarray of shape (n,)
        """
        self._check_fitted()
        _check_signals(signals, self.signals_)
        scalars = self._scalars({name: signals[name] for name in self.signals_})
        out = {}
        for name in self.signals_:
            v = scalars[name]
            d = np.log(np.maximum(v, 0.0) + self.eps_[name]) - self.center_[name]
            dev = np.maximum(d, 0.0) / self.upper_[name]
            if SIGNALS[name][1] and self.lower_[name] > _SPREAD_MIN:
                dev = np.maximum(dev, np.maximum(-d, 0.0) / self.lower_[name])
            out[name] = dev
        return out

    def score(self, signals: Mapping[str, np.ndarray]) -> np.ndarray:
        """The OOD score of each image: its largest deviation, shape (n,)."""
        return np.max(np.stack(list(self.deviations(signals).values())), axis=0)

    def predict(self, signals: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n,) bool: True where the score exceeds ``threshold_`` (out of distribution)."""
        return self.score(signals) > self.threshold_

    def percentiles(self, signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per used signal, the share of reference images (0..100) with a value <= each image's."""
        self._check_fitted()
        _check_signals(signals, self.signals_)
        scalars = self._scalars({name: signals[name] for name in self.signals_})
        return {
            name: 100.0
            * np.searchsorted(self.reference_[name], scalars[name], "right")
            / len(self.reference_[name])
            for name in self.signals_
        }

    def ratio_to_median(self, signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per used signal, each image's value divided by the reference median."""
        self._check_fitted()
        _check_signals(signals, self.signals_)
        scalars = self._scalars({name: signals[name] for name in self.signals_})
        return {
            name: scalars[name] / max(float(np.median(self.reference_[name])), 1e-12)
            for name in self.signals_
        }

    @property
    def rule(self) -> str:
        """The rule in words, for a page or a report."""
        self._check_fitted()
        names = ", ".join(SIGNALS[s][0] for s in self.signals_)
        return (
            f"out of distribution when the largest deviation of ({names}) from held-out images "
            f"exceeds {self.threshold_:.2f}, the threshold that flags at most "
            f"{100 * self.alpha_:.1f} % of held-out images"
        )


def fit_detector(
    model: nn.Module,
    x_ref: np.ndarray,
    z_train: np.ndarray | KnnIndex,
    *,
    space: ClusterSpace | None = None,
    alpha: float = ALPHA,
    seed: int = 0,
    k: int = KNN_K,
    emb: Embedding | None = None,
) -> OodDetector:
    """:func:`ood_signals` of held-out images ``x_ref`` (e.g. the test split), then
    :meth:`OodDetector.fit` on them."""
    signals = ood_signals(model, x_ref, z_train, space=space, k=k, emb=emb)
    return OodDetector(alpha=alpha, seed=seed).fit(signals)


__all__ = [
    "ALPHA",
    "KNN_K",
    "SIGNALS",
    "OodDetector",
    "fit_detector",
    "ood_signals",
    "pixel_statistics",
    "sphere_distance",
]
