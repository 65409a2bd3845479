"""Atom and code usage of ``scvae`` and ``vqvae`` models over a whole image set (docs/methods.md):
which dictionary atoms (or codebook vectors) are used, how often, together with which,
by which class, and how sparse the codes are; plus images of the atoms through the decoder.

Statistics are accumulated batch by batch, so the whole dataset is covered with bounded memory
(never only the first batch). Pure functions: a model plus arrays in, arrays and small frozen
dataclasses out; the model is used as given (eval mode, on CPU) under ``torch.inference_mode``.

Vocabulary: a *position* is one cell of the latent grid of one sample (a vector latent has one);
an atom is *active* at a position when its code there is non-zero (exact zeros, as produced by
ISTA's soft threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.analysis.embedding import _batch, _batches, _check_batch_size, check_images
from lsx.errors import ConfigError, DataShapeError


def has_atoms(model: nn.Module) -> bool:
    """True for sparse-coding models (``scvae``): ``atoms`` (K, latent_dim) and float ``code``."""
    return isinstance(getattr(model, "atoms", None), torch.Tensor) and hasattr(model, "code")


def has_codebook(model: nn.Module) -> bool:
    """True for vector-quantised models (``vqvae``): ``codebook`` (K, latent_dim), int ``code``."""
    return isinstance(getattr(model, "codebook", None), torch.Tensor) and hasattr(model, "code")


def _labels(y: np.ndarray | None, n: int, n_classes: int | None) -> tuple[np.ndarray | None, int]:
    if n == 0:
        raise DataShapeError("Usage statistics need at least one image; got an empty array.")
    if y is None:
        return None, 0
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
        raise DataShapeError(
            f"y must hold one non-negative int label per image, shape ({n},); got shape "
            f"{y.shape} and dtype {y.dtype}."
        )
    needed = int(y.max()) + 1 if n else 0
    if n_classes is not None and n_classes < needed:
        raise DataShapeError(f"n_classes={n_classes} but y holds labels up to {needed - 1}.")
    return y.astype(np.int64), int(n_classes if n_classes is not None else needed)


def perplexity(counts: np.ndarray) -> float:
    """exp(entropy) of the usage distribution ``counts / counts.sum()``: the effective number of
    atoms or codes in use (K when all are used equally, 1 when one takes everything)."""
    p = np.asarray(counts, dtype=np.float64)
    total = p.sum()
    if total <= 0:
        return 0.0
    p = p[p > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


class _UsageCounts:
    """Statistics derived from ``counts`` (per atom or code) over ``n_positions`` grid cells."""

    counts: np.ndarray
    n_positions: int

    @property
    def usage(self) -> np.ndarray:
        """Fraction of positions where each atom is active (each code is assigned)."""
        return self.counts / max(self.n_positions, 1)

    @property
    def dead(self) -> np.ndarray:
        """Indices of the atoms or codes never used."""
        return np.flatnonzero(self.counts == 0)

    @property
    def share_used(self) -> float:
        """Fraction of the atoms or codes used at least once."""
        return float((self.counts > 0).mean())

    @property
    def perplexity(self) -> float:
        """Effective number used: exp entropy of the counts over the whole set (not per batch)."""
        return perplexity(self.counts)


@dataclass(frozen=True, eq=False)
class AtomStats(_UsageCounts):
    """Usage and sparsity of an scvae's sparse codes over an image set.

    Attributes
    ----------
    counts : ndarray of shape (n_atoms,), int64
        Positions where each atom is active.
    n_positions : int
        Positions seen: n_samples * h * w.
    coactivation : ndarray of shape (n_atoms, n_atoms), float64
        Fraction of positions where atoms j and k are both active (diagonal: ``usage``).
    l0, l1 : ndarrays of shape (n_samples,), float32
        Mean number of active atoms, and mean ||s_p||_1, per position of each sample.
    dominant : ndarray of shape (n_samples,), int64
        Atom with the largest sum_p |s_kp| in each sample; -1 when all its codes are zero.
    class_usage : ndarray of shape (n_classes, n_atoms) or None
        Fraction of the class's positions where each atom is active (None without labels).
    mean_code : ndarray of shape (n_atoms, h, w), float32
        Mean code per grid position.
    mean_active : ndarray of shape (n_atoms,), float32
        Mean |s_k| over the positions where atom k is active (0 for dead atoms).
    zero_fraction, hoyer : float
        Fraction of exact zeros in all codes, and Hoyer sparsity of the flattened code tensor
        (sqrt(N) - ||s||_1 / ||s||_2) / (sqrt(N) - 1) (docs/methods.md).
    """

    counts: np.ndarray
    n_positions: int
    coactivation: np.ndarray
    l0: np.ndarray
    l1: np.ndarray
    dominant: np.ndarray
    class_usage: np.ndarray | None
    mean_code: np.ndarray
    mean_active: np.ndarray
    zero_fraction: float
    hoyer: float

    @property
    def n_atoms(self) -> int:
        return len(self.counts)

    def per_class(self, y: np.ndarray, n_classes: int | None = None) -> dict[str, np.ndarray]:
        """Mean L0 and L1 per position of each class: ``{"l0": (n_classes,), "l1": ...}``
        (NaN for a class without samples); ``y`` labels the samples in ``l0`` order."""
        y, n_cls = _labels(y, len(self.l0), n_classes)
        counts = np.bincount(y, minlength=n_cls).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                name: np.bincount(y, weights=values, minlength=n_cls) / counts
                for name, values in (("l0", self.l0), ("l1", self.l1))
            }


def atom_stats(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    n_classes: int | None = None,
    batch_size: int = 256,
) -> AtomStats:
    """Atom usage, co-activation, sparsity and dominant atoms of an scvae over all of ``x``.

    Parameters
    ----------
    model : nn.Module
        A model with :func:`has_atoms` (``code(x)`` -> (B, n_atoms, h, w)), in eval mode.
    x : ndarray of shape (n_samples, C, H, W)
        Images in [0, 1].
    y : ndarray of shape (n_samples,), int, or None
        Class labels for ``class_usage``.
    n_classes : int or None
        Rows of ``class_usage``; default ``y.max() + 1``.
    batch_size : int, default=256

    Returns
    -------
    AtomStats

    Raises
    ------
    ConfigError
        The model has no sparse codes (not an scvae).
    DataShapeError
        ``x`` or ``y`` has the wrong shape or non-finite values.
    """
    if not has_atoms(model):
        raise ConfigError(
            f"Atom statistics need a sparse-coding model (kind 'scvae'); got kind "
            f"{model.config.kind!r}. For 'vqvae' use code_stats."
        )
    _check_batch_size(batch_size)
    x = check_images(model, x)
    y, n_cls = _labels(y, len(x), n_classes)
    n, k = len(x), model.atoms.shape[0]
    l0, l1 = np.empty(n, np.float32), np.empty(n, np.float32)
    dominant = np.empty(n, np.int64)
    by_class = np.zeros((n_cls, k), np.float64) if y is not None else None
    sums: dict[str, Any] = {}  # dataset totals, added up batch by batch
    with torch.inference_mode():
        for sl in _batches(n, batch_size):
            s = model.code(_batch(x[sl])).double()  # (B, K, h, w)
            active = s != 0
            l0[sl] = active.sum(1).double().mean((1, 2)).numpy()
            l1[sl] = s.abs().sum(1).mean((1, 2)).numpy()
            energy = s.abs().sum((2, 3))  # (B, K)
            dominant[sl] = torch.where(energy.amax(1) > 0, energy.argmax(1), -1).numpy()
            if by_class is not None:
                np.add.at(by_class, y[sl], active.double().mean((2, 3)).numpy())
            for key, value in _batch_sums(s, active).items():
                sums[key] = value if key not in sums else sums[key] + value
    if by_class is not None:
        by_class /= np.maximum(np.bincount(y, minlength=n_cls)[:, None], 1)
    counts = sums["counts"].astype(np.int64)
    n_pos, n_entries = n * math.prod(sums["code_sum"].shape[1:]), sums["entries"]
    root_n = math.sqrt(max(n_entries, 1))
    l2 = math.sqrt(sums["l2"])
    hoyer = (root_n - sums["l1"] / l2) / (root_n - 1) if l2 > 0 and n_entries > 1 else 1.0
    return AtomStats(
        counts=counts,
        n_positions=n_pos,
        coactivation=sums["co"] / max(n_pos, 1),
        l0=l0,
        l1=l1,
        dominant=dominant,
        class_usage=by_class,
        mean_code=(sums["code_sum"] / max(n, 1)).astype(np.float32),
        mean_active=(sums["abs"] / np.maximum(counts, 1)).astype(np.float32),
        zero_fraction=1 - counts.sum() / max(n_entries, 1),
        hoyer=float(hoyer),
    )


def _batch_sums(s: torch.Tensor, active: torch.Tensor) -> dict[str, Any]:
    """Sums over one batch of codes s (B, K, h, w) that atom_stats adds up over the dataset."""
    flat = active.movedim(1, -1).reshape(-1, s.shape[1]).double()  # (B*h*w, K)
    return {
        "counts": active.sum((0, 2, 3)).numpy(),  # (K,) positions where each atom is active
        "co": (flat.t() @ flat).numpy(),  # (K, K) positions where both are active
        "code_sum": s.sum(0).numpy(),  # (K, h, w)
        "abs": s.abs().sum((0, 2, 3)).numpy(),  # (K,)
        "l1": float(s.abs().sum()),
        "l2": float(s.pow(2).sum()),
        "entries": s.numel(),
    }


@dataclass(frozen=True, eq=False)
class CodeStats(_UsageCounts):
    """Codebook usage of a vqvae over an image set.

    Attributes
    ----------
    counts : ndarray of shape (n_codes,), int64
        Positions assigned to each code.
    n_positions : int
    dominant : ndarray of shape (n_samples,), int64
        The most frequent code in each sample's grid (lowest index on ties).
    class_usage : ndarray of shape (n_classes, n_codes) or None
        Fraction of the class's positions assigned to each code.
    """

    counts: np.ndarray
    n_positions: int
    dominant: np.ndarray
    class_usage: np.ndarray | None

    @property
    def n_codes(self) -> int:
        return len(self.counts)


def code_stats(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    n_classes: int | None = None,
    batch_size: int = 256,
) -> CodeStats:
    """Code usage, perplexity and dominant codes of a vqvae over all of ``x``.

    Parameters
    ----------
    model : nn.Module
        A model with :func:`has_codebook` (``code(x)`` -> (B, h, w) int64), in eval mode.
    x, y, n_classes, batch_size
        As in :func:`atom_stats`.

    Returns
    -------
    CodeStats

    Raises
    ------
    ConfigError
        The model has no codebook (not a vqvae).
    """
    if not has_codebook(model):
        raise ConfigError(
            f"Code statistics need a vector-quantised model (kind 'vqvae'); got kind "
            f"{model.config.kind!r}. For 'scvae' use atom_stats."
        )
    _check_batch_size(batch_size)
    x = check_images(model, x)
    y, n_cls = _labels(y, len(x), n_classes)
    k = model.codebook.shape[0]
    counts = np.zeros(k, np.int64)
    dominant = np.empty(len(x), np.int64)
    by_class = np.zeros((n_cls, k), np.float64) if y is not None else None
    n_pos = 0
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            idx = model.code(_batch(x[sl])).flatten(1)  # (B, h*w)
            hist = torch.zeros(len(idx), k, dtype=torch.int64).scatter_add_(
                1, idx, torch.ones_like(idx)
            )  # (B, K) positions per code
            counts += hist.sum(0).numpy()
            dominant[sl] = hist.argmax(1).numpy()
            if by_class is not None:
                np.add.at(by_class, y[sl], (hist.double() / idx.shape[1]).numpy())
            n_pos += idx.numel()
    if by_class is not None:
        by_class /= np.maximum(np.bincount(y, minlength=n_cls)[:, None], 1)
    return CodeStats(counts=counts, n_positions=n_pos, dominant=dominant, class_usage=by_class)


def dominant_atom(
    model: nn.Module, x: np.ndarray, *, batch_size: int = 256
) -> tuple[np.ndarray, int]:
    """The dominant atom (scvae) or most frequent code (vqvae) of each image.

    Returns
    -------
    dominant : ndarray of shape (n_samples,), int64
        -1 for an scvae sample whose codes are all zero.
    n_atoms : int
        K, the number of atoms or codes.

    Raises
    ------
    ConfigError
        The model has neither atoms nor a codebook.
    """
    if has_atoms(model):
        return atom_stats(model, x, batch_size=batch_size).dominant, int(model.atoms.shape[0])
    if has_codebook(model):
        return code_stats(model, x, batch_size=batch_size).dominant, int(model.codebook.shape[0])
    raise ConfigError(
        f"Colouring by dominant atom needs an 'scvae' or 'vqvae' run; this one is "
        f"{model.config.kind!r}. Pick another colour."
    )


def dictionary_images(
    model: nn.Module,
    vectors: np.ndarray,
    *,
    scale: float | np.ndarray = 1.0,
    base: np.ndarray | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Decode each dictionary vector, repeated at every grid position, through the decoder.

    Parameters
    ----------
    model : nn.Module
        An lsx model whose latent has ``latent_dim`` channels (``latent_shape``).
    vectors : ndarray of shape (K, latent_dim)
        Atoms (``model.atoms``) or codebook vectors (``model.codebook``).
    scale : float or ndarray of shape (K,)
        Coefficient of each vector, e.g. ``AtomStats.mean_active`` (a typical code value).
    base : ndarray of shape latent_shape, or None
        Latent added to every image: None decodes each atom alone; ``D @ mean_code`` decodes
        "atom plus the mean code".
    batch_size : int, default=64

    Returns
    -------
    images : ndarray of shape (K, C, H, W), float32 in [0, 1]
    """
    _check_batch_size(batch_size)
    shape = tuple(model.latent_shape)  # (n,) or (n, h, w)
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != shape[0]:
        raise DataShapeError(
            f"vectors must have shape (K, {shape[0]}) for this model; got {v.shape}."
        )
    coef = np.broadcast_to(np.asarray(scale, dtype=np.float32), (len(v),))
    z = (v * coef[:, None]).reshape(len(v), shape[0], *([1] * (len(shape) - 1)))
    z = np.broadcast_to(z, (len(v), *shape)).copy()  # every position holds the vector
    if base is not None:
        if tuple(np.shape(base)) != shape:
            raise DataShapeError(f"base must have shape {shape}; got {np.shape(base)}.")
        z += np.asarray(base, dtype=np.float32)[None]
    out = np.empty((len(v), *model.config.input_shape), dtype=np.float32)
    with torch.inference_mode():
        for sl in _batches(len(v), batch_size):
            out[sl] = model.decode(torch.from_numpy(z[sl])).float().numpy()
    return out


def mean_latent(model: nn.Module, mean_code: np.ndarray) -> np.ndarray:
    """``D @ mean_code``: the latent of the mean sparse code, shape ``latent_shape``.

    Parameters
    ----------
    model : nn.Module
        An scvae (:func:`has_atoms`).
    mean_code : ndarray of shape (n_atoms, h, w)
        ``AtomStats.mean_code``.
    """
    atoms = model.atoms.detach().cpu().numpy().astype(np.float64)  # (K, n)
    z = np.einsum("khw,kn->nhw", np.asarray(mean_code, dtype=np.float64), atoms)
    return z.reshape(model.latent_shape).astype(np.float32)
