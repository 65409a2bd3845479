"""Input perturbations of a sweep and their levels (step 1 of the pipeline of
:mod:`lsx.analysis.manifold`): Gaussian noise, blur or occlusion, seeded per image, the same noise
draw at every level (common random numbers, so a sample's path is smooth in sigma).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from lsx.errors import ConfigError, DataShapeError

MAX_LEVELS = 20


@dataclass(frozen=True)
class PerturbationSpec:
    """One kind of input perturbation: what its level means and its range."""

    unit: str  # what a level is
    max_level: float
    default_levels: tuple[float, ...]
    summary: str


PERTURBATIONS: Mapping[str, PerturbationSpec] = MappingProxyType(
    {
        "gaussian": PerturbationSpec(
            "standard deviation of additive Gaussian noise (images in [0, 1], clipped back)",
            1.0,
            (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),  # docs/methods.md [INF]; the paper's levels: NOT FOUND
            "x + level * N(0, 1), clipped to [0, 1]",
        ),
        "blur": PerturbationSpec(
            "standard deviation of a Gaussian blur in pixels",
            8.0,
            (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
            "Gaussian blur of each channel (scipy.ndimage, edges repeated)",
        ),
        "occlusion": PerturbationSpec(
            "side of a square patch set to 0, as a fraction of the image side",
            1.0,
            (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
            "a square of side level * min(H, W) set to 0 at a random place per image",
        ),
    }
)


# ------------------------------------------------------------------------------ configuration


def check_levels(
    levels: Sequence[float] | None, perturbation: str = "gaussian"
) -> tuple[float, ...]:
    """Validated, sorted perturbation levels that always include the clean level 0.

    Parameters
    ----------
    levels : sequence of float or None
        None gives the perturbation's default levels.
    perturbation : {"gaussian", "blur", "occlusion"}

    Returns
    -------
    tuple of float
        Sorted, without duplicates, starting at 0.0 (the clean reference every comparison uses).

    Raises
    ------
    ConfigError
        Unknown perturbation; no levels, too many, non-numbers, or levels out of range.
    """
    spec = perturbation_spec(perturbation)
    if levels is None:
        return spec.default_levels
    try:
        values = [float(v) for v in levels]
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"Perturbation levels must be a list of numbers; got {levels!r}. "
            f"Example: {list(spec.default_levels)}."
        ) from err
    if not values or len(values) > MAX_LEVELS:
        raise ConfigError(
            f"Give between 1 and {MAX_LEVELS} perturbation levels; got {len(values)}. "
            f"Example: {list(spec.default_levels)}."
        )
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= spec.max_level)]
    if bad:
        raise ConfigError(
            f"Perturbation level(s) {bad} out of range for {perturbation!r}: a level is the "
            f"{spec.unit}, in [0, {spec.max_level:g}]. Got {values}; the default is "
            f"{list(spec.default_levels)}."
        )
    return tuple(sorted(set(values) | {0.0}))


def perturbation_spec(perturbation: str) -> PerturbationSpec:
    """The :data:`PERTURBATIONS` entry; ConfigError naming the known ones otherwise."""
    if perturbation not in PERTURBATIONS:
        raise ConfigError(
            f"Unknown perturbation {perturbation!r}; use one of {', '.join(PERTURBATIONS)}."
        )
    return PERTURBATIONS[perturbation]


# ------------------------------------------------------------------------------ perturbations


def perturbation_noise(
    shape: tuple[int, ...], index: np.ndarray, perturbation: str, seed: int = 0
) -> np.ndarray | None:
    """The random draw of each image, shared by all levels (common random numbers).

    Parameters
    ----------
    shape : tuple
        ``(C, H, W)`` of one image.
    index : ndarray of shape (n,)
        Global image ids: image ``i`` always gets ``default_rng([seed, i])``, whatever the batch.
    perturbation : {"gaussian", "blur", "occlusion"}
    seed : int

    Returns
    -------
    ndarray or None
        gaussian: ``(n, C, H, W)`` float32 standard normal; occlusion: ``(n, 2)`` patch position
        in [0, 1); blur: None (deterministic).
    """
    perturbation_spec(perturbation)
    if perturbation == "blur":
        return None
    rngs = [np.random.default_rng([int(seed), int(i)]) for i in np.asarray(index)]
    if perturbation == "gaussian":
        out = np.empty((len(rngs), *shape), dtype=np.float32)
        for k, rng in enumerate(rngs):
            out[k] = rng.standard_normal(shape, dtype=np.float32)
        return out
    return np.array([rng.random(2) for rng in rngs]).reshape(len(rngs), 2)


def apply_perturbation(
    x: np.ndarray, perturbation: str, level: float, noise: np.ndarray | None
) -> np.ndarray:
    """Perturb a batch of images at one level (a new array; ``x`` is not changed).

    Parameters
    ----------
    x : ndarray of shape (n, C, H, W)
        Images in [0, 1].
    perturbation : {"gaussian", "blur", "occlusion"}
    level : float
        In the perturbation's range (:data:`PERTURBATIONS`).
    noise : ndarray or None
        From :func:`perturbation_noise` for the same images.

    Returns
    -------
    ndarray of shape (n, C, H, W), float32 in [0, 1]
    """
    x = np.asarray(x, dtype=np.float32)
    check_levels([level], perturbation)
    if level == 0.0:
        return x.copy()
    if perturbation == "gaussian":
        return np.clip(x + np.float32(level) * noise, 0.0, 1.0)
    if perturbation == "blur":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(x, sigma=(0, 0, level, level), mode="nearest").astype(np.float32)
    out = x.copy()  # occlusion
    h, w = x.shape[-2:]
    side = int(round(level * min(h, w)))
    for k, (u, v) in enumerate(noise):
        top, left = int(u * (h - side + 1)), int(v * (w - side + 1))
        out[k, :, top : top + side, left : left + side] = 0.0
    return out


def perturb(
    x: np.ndarray,
    perturbation: str,
    level: float,
    *,
    seed: int = 0,
    index: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`apply_perturbation` with the seeded draw of :func:`perturbation_noise`.

    ``index`` (default ``arange(n)``) names the images, so a batch gets the same noise as the same
    images inside a bigger array.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise DataShapeError(f"perturb expects images of shape (n, C, H, W); got {x.shape}.")
    index = np.arange(len(x)) if index is None else np.asarray(index)
    noise = perturbation_noise(x.shape[1:], index, perturbation, seed)
    return apply_perturbation(x, perturbation, level, noise)
