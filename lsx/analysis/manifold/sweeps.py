"""The perturbation sweep (steps 1 to 4 of the pipeline of :mod:`lsx.analysis.manifold`):
its settings, the batch-major pass over images x levels, and what it measured.

A model plus arrays in, a small frozen result out; the model is never mutated (it must already be
in eval mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lsx.analysis.manifold.factors import mode_covariances, numerical_rank
from lsx.analysis.manifold.hilbert import _map_eig
from lsx.analysis.manifold.perturbations import (
    apply_perturbation,
    perturbation_noise,
)
from lsx.analysis.manifold.settings import SPSD_MAPS as SPSD_MAPS
from lsx.analysis.manifold.settings import SweepConfig
from lsx.analysis.manifold.subspaces import (
    SubspaceResult,
    _compare_subspaces,
    _StreamingSubspace,
)
from lsx.errors import DataShapeError

LOG_FLOOR = -16.0  # log10 of a normalised eigenvalue below 1e-16 is shown as -16


@dataclass(frozen=True, eq=False)
class SweepResult:
    """What a perturbation sweep measured (small: no images, no full latents).

    Attributes
    ----------
    config : SweepConfig
    levels : ndarray of shape (n_levels,)
    latent_shape : tuple of int
    n_samples : int
    ranks : ndarray of shape (n_levels, n_samples, 3), int16, or None (vector latent)
    mean_log_spectra : tuple of 3 ndarrays of shape (n_levels, n_mode) or None
        Mean over images of ``log10(lambda_j / lambda_1)`` (floored at -16), per mode.
    spectra : tuple of 3 ndarrays of shape (n_levels, n_samples, n_mode) or None
        Every eigenvalue, only with ``keep_spectra=True`` (to re-rank at other tolerances).
    map_xy : ndarray of shape (n_levels, n_samples, 2), float32
        Latents projected on the first two principal axes of the clean latents.
    displacement : ndarray of shape (n_levels, n_samples), float32
        ``||z_level - z_clean|| / ||z_clean||`` per image.
    subspace : SubspaceResult
    """

    config: SweepConfig
    levels: np.ndarray
    latent_shape: tuple[int, ...]
    n_samples: int
    ranks: np.ndarray | None
    mean_log_spectra: tuple[np.ndarray, ...] | None
    spectra: tuple[np.ndarray, ...] | None
    map_xy: np.ndarray
    displacement: np.ndarray
    subspace: SubspaceResult
    map_axes: tuple[str, str] = ("PC 1", "PC 2")

    @property
    def spatial(self) -> bool:
        return len(self.latent_shape) == 3

    @property
    def mode_sizes(self) -> tuple[int, ...] | None:
        return tuple(self.latent_shape) if self.spatial else None


def _check_model(model: nn.Module) -> tuple[int, ...]:
    shape = tuple(getattr(model, "latent_shape", ()))
    if len(shape) not in (1, 3) or not hasattr(model, "encode"):
        raise DataShapeError(
            f"Expected an lsx model with encode() and a latent_shape of 1 or 3 axes; got "
            f"{type(model).__name__} with latent_shape {shape}."
        )
    return shape


def _batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _encode(model: nn.Module, x: np.ndarray, device: str) -> np.ndarray:
    with torch.inference_mode():
        z = model.encode(torch.from_numpy(np.ascontiguousarray(x)).to(device))
    return z.detach().to("cpu", torch.float32).numpy()


def _clean_batch(x: Any, sl: slice, input_shape: tuple[int, ...]) -> np.ndarray:
    xb = np.array(x[sl], dtype=np.float32)  # a writable copy of one batch (x may be read-only)
    if xb.ndim != 4 or tuple(xb.shape[1:]) != tuple(input_shape):
        raise DataShapeError(
            f"The model expects images of shape (n, {', '.join(map(str, input_shape))}); got a "
            f"batch of shape {xb.shape}. Use the dataset the checkpoint was trained on."
        )
    if not np.isfinite(xb).all():
        raise DataShapeError("The images contain NaN or Inf values; clean the data first.")
    return xb


def _fit_map(model: nn.Module, x: Any, slices: list[slice], device: str) -> Any:
    """2-D PCA of the clean latents, fitted batch by batch (a pre-pass over the clean images)."""
    from sklearn.decomposition import IncrementalPCA

    ipca = IncrementalPCA(n_components=2)
    shape = tuple(model.config.input_shape)
    for sl in slices:
        ipca.partial_fit(
            _encode(model, _clean_batch(x, sl, shape), device).reshape(sl.stop - sl.start, -1)
        )
    return ipca


def sweep(
    model: nn.Module,
    x: Any,
    config: SweepConfig | None = None,
    *,
    device: str = "cpu",
    keep_spectra: bool = False,
) -> SweepResult:
    """Encode every image at every perturbation level and measure the latent manifold.

    Work is batch-major (one batch of clean images, then all its levels), so memory is bounded
    by the batch and a few per-image numbers, never by ``n_images x n_levels`` images or latents;
    ``x`` may be a memory-mapped array. A vector latent gets the analyses that apply to it
    (latent-map trajectory, displacement, principal subspaces of the latents themselves).

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode on ``device`` (a VAE encodes to its posterior mean).
    x : array-like of shape (n_samples, C, H, W)
        Clean images in [0, 1]; at least 3.
    config : SweepConfig or None
    device : str
    keep_spectra : bool
        Keep every eigenvalue (``n_levels x n_samples x (C + h + w)`` floats).

    Returns
    -------
    SweepResult

    Raises
    ------
    DataShapeError
        Images of the wrong shape, NaN/Inf, fewer than 3 images.
    ConfigError
        Bad settings (:class:`SweepConfig`).
    """
    config = SweepConfig() if config is None else config
    latent_shape = _check_model(model)
    n = len(x)
    if n < 3:
        raise DataShapeError(f"A sweep needs at least 3 images; got {n}.")
    acc = _Accumulator(config, latent_shape, n, keep_spectra)
    slices = list(_batch_slices(n, config.batch_size))
    with _one_blas_thread():
        acc.mapper = _fit_map(model, x, slices, device)
        _run(model, x, config, slices, acc, device)
        return acc.result()


def _one_blas_thread() -> Any:
    """Many small LAPACK calls are fastest on one BLAS thread; two threads slowed a batched
    ``eigh`` 40x on the shared 2-core machine (measured)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _run(
    model: nn.Module,
    x: Any,
    config: SweepConfig,
    slices: list[slice],
    acc: _Accumulator,
    device: str,
) -> None:
    for sl in slices:
        xb = _clean_batch(x, sl, tuple(model.config.input_shape))
        index = np.arange(sl.start, sl.stop)
        noise = perturbation_noise(xb.shape[1:], index, config.perturbation, config.seed)
        z_clean = None
        for li, level in enumerate(config.levels):
            xp = apply_perturbation(xb, config.perturbation, level, noise)
            z = _encode(model, xp, device)  # (b, *latent_shape)
            z_clean = z if z_clean is None else z_clean
            acc.add(li, sl, z, z_clean)


class _Accumulator:
    """Per-image numbers and per-level running statistics of a sweep (the only state kept)."""

    def __init__(
        self, config: SweepConfig, latent_shape: tuple[int, ...], n: int, keep_spectra: bool
    ) -> None:
        self.config, self.latent_shape, self.n = config, latent_shape, n
        self.spatial = len(latent_shape) == 3
        n_levels = len(config.levels)
        width = int(np.prod(latent_shape))
        if self.spatial:  # length of the Hilbert features of one tensor
            half = config.spsd_map == "regularized"
            width = sum(m * (m + 1) // (2 if half else 1) for m in latent_shape)
        self.n_components = max(1, min(config.max_components, n, width))
        self.subspaces = [_StreamingSubspace(self.n_components) for _ in range(n_levels)]
        self.mapper: Any = None
        self.map_xy = np.empty((n_levels, n, 2), dtype=np.float32)
        self.displacement = np.empty((n_levels, n), dtype=np.float32)
        self.ranks = np.empty((n_levels, n, 3), dtype=np.int16) if self.spatial else None
        sizes = latent_shape if self.spatial else ()
        self.spec_sums = [np.zeros((n_levels, m)) for m in sizes]
        self.kept = [np.empty((n_levels, n, m), np.float32) for m in sizes] if keep_spectra else []

    def add(self, li: int, sl: slice, z: np.ndarray, z_clean: np.ndarray) -> None:
        cfg = self.config
        flat, flat0 = z.reshape(len(z), -1), z_clean.reshape(len(z), -1)
        norm = np.maximum(np.linalg.norm(flat0, axis=1), 1e-12)
        self.displacement[li, sl] = np.linalg.norm(flat - flat0, axis=1) / norm
        self.map_xy[li, sl] = self.mapper.transform(flat)
        if not self.spatial:
            self.subspaces[li].add(flat.astype(np.float64))
            return
        feats = []
        for mi, cov in enumerate(mode_covariances(z, cfg.centered)):
            w, v = np.linalg.eigh(cov)  # ascending; one decomposition for ranks and the map
            spec = np.clip(w[:, ::-1], 0.0, None)  # (b, n_mode), descending
            self.ranks[li, sl, mi] = numerical_rank(spec, cfg.rtol, cfg.atol)
            top = np.maximum(spec[:, :1], np.finfo(np.float64).tiny)
            self.spec_sums[mi][li] += np.log10(np.maximum(spec / top, 10.0**LOG_FLOOR)).sum(0)
            if self.kept:
                self.kept[mi][li, sl] = spec
            feats.append(_map_eig(w, v, cfg.rtol, cfg.atol, cfg.spsd_map, cfg.reg))
        self.subspaces[li].add(np.concatenate(feats, axis=-1))  # (b, p)

    def result(self) -> SweepResult:
        space = "hilbert" if self.spatial else "latent"
        return SweepResult(
            config=self.config,
            levels=np.asarray(self.config.levels, dtype=np.float64),
            latent_shape=self.latent_shape,
            n_samples=self.n,
            ranks=self.ranks,
            mean_log_spectra=tuple(s / self.n for s in self.spec_sums) if self.spatial else None,
            spectra=tuple(self.kept) if self.kept else None,
            map_xy=self.map_xy,
            displacement=self.displacement,
            subspace=_compare_subspaces(
                self.subspaces, self.config.energy, self.config.n_angles, space
            ),
        )
