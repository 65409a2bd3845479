"""The settings of a perturbation sweep (:class:`SweepConfig`), shared by every step of the
pipeline of :mod:`lsx.analysis.manifold`; it imports no other step, so each step can use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lsx.analysis.manifold.perturbations import PERTURBATIONS, check_levels
from lsx.config import check_choice, check_float, check_int
from lsx.errors import ConfigError

SPSD_MAPS = ("range_log", "regularized")  # Hilbert maps of rank-deficient factors (hilbert.py)


@dataclass(frozen=True)
class SweepConfig:
    """Settings of a perturbation sweep. Defaults are lsx interpretations (docs/methods.md).

    Attributes
    ----------
    perturbation : {"gaussian", "blur", "occlusion"}
    levels : tuple of float or None
        None: the perturbation's default levels; 0 is always added (see :func:`check_levels`).
    seed : int
        Seeds the noise (per image: ``default_rng([seed, image_index])``).
    centered : bool
        Centre each unfolding's rows before the covariance (the paper's centring is NOT FOUND).
    rtol : float or None
        Rank tolerance relative to the largest eigenvalue of each covariance; None is numpy's
        ``matrix_rank`` rule ``n * eps`` with the eps of float32, the latents' precision.
    atol : float
        Absolute floor of the tolerance: ``tol = max(atol, rtol * lambda_max)``.
    spsd_map : {"range_log", "regularized"}
        Hilbert map of rank-deficient factors (:func:`hilbert_map`); "regularized" is approximate.
    reg : float
        Ridge of the regularised log map, relative to ``trace / n``.
    energy : float
        Share of the variance the principal subspace of each level must hold (its dimension).
    max_components : int
        Principal components tracked per level (streaming PCA); a dimension that needs more
        is reported as capped (a lower bound).
    n_angles : int
        Dimension of the subspaces compared with the clean one (at most the clean dimension
        and ``max_components``).
    batch_size : int
        Images per batch. Memory is bounded by the batch and ``max_components``, never by the
        number of images times levels.
    """

    perturbation: str = "gaussian"
    levels: tuple[float, ...] | None = None
    seed: int = 0
    centered: bool = True
    rtol: float | None = None
    atol: float = 0.0
    spsd_map: str = "range_log"
    reg: float = 1e-6
    energy: float = 0.9
    max_components: int = 128
    n_angles: int = 8
    batch_size: int = 128

    def __post_init__(self) -> None:
        check_choice(self, "perturbation", tuple(PERTURBATIONS))
        object.__setattr__(self, "levels", check_levels(self.levels, self.perturbation))
        check_int(self, "seed", low=0)
        if not isinstance(self.centered, bool):
            raise ConfigError(f"SweepConfig.centered must be true or false; got {self.centered!r}.")
        if self.rtol is not None:
            check_float(self, "rtol", low=0.0, high=1.0)
        check_float(self, "atol", low=0.0)
        check_choice(self, "spsd_map", SPSD_MAPS)
        check_float(self, "reg", low=0.0, high=1.0, low_open=True)
        check_float(self, "energy", low=0.0, high=1.0, low_open=True)
        check_int(self, "max_components", low=1, high=512)
        check_int(self, "n_angles", low=1, high=512)
        check_int(self, "batch_size", low=1, high=100_000)

    def replace(self, **changes: Any) -> SweepConfig:
        return dataclasses.replace(self, **changes)
