"""Summaries of a sweep (step 5 of the pipeline of :mod:`lsx.analysis.manifold`): strata
(rank triples) per level, a plain-language :func:`verdict`, and the strata and subspace tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lsx.analysis.manifold.factors import factor_types
from lsx.analysis.manifold.sweeps import SweepResult
from lsx.errors import DataShapeError

Triple = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class StrataSummary:
    """Rank triples (strata) per perturbation level.

    Attributes
    ----------
    levels : ndarray of shape (n_levels,)
    mode_sizes : tuple of 3 int
        ``(C, h, w)``: a factor is SPD when its rank equals its size.
    counts : tuple of n_levels tuples of (triple, count)
        Most frequent first.
    n_distinct : ndarray of shape (n_levels,)
        Distinct triples per level.
    n_strata : int
        Distinct triples over all levels that hold at least ``min_share`` of the images at some
        level (lsx rule: single outliers are not a stratum).
    n_strata_all : int
        All distinct triples seen.
    mean_ranks : ndarray of shape (n_levels, 3)
    modal : tuple of n_levels triples
    modal_share : ndarray of shape (n_levels,)
    change_rate : ndarray of shape (n_levels,)
        Share of images whose triple differs from their own clean triple.
    """

    levels: np.ndarray
    mode_sizes: tuple[int, ...]
    counts: tuple[tuple[tuple[Triple, int], ...], ...]
    n_distinct: np.ndarray
    n_strata: int
    n_strata_all: int
    mean_ranks: np.ndarray
    modal: tuple[Triple, ...]
    modal_share: np.ndarray
    change_rate: np.ndarray
    min_share: float


def strata(
    ranks: np.ndarray,
    levels: Sequence[float],
    mode_sizes: Sequence[int],
    min_share: float = 0.01,
) -> StrataSummary:
    """Summarise rank triples per level: the paper's smooth-versus-stratified test.

    Parameters
    ----------
    ranks : ndarray of shape (n_levels, n_samples, 3)
        Level 0 (clean) first, as :func:`sweep` returns them.
    levels : sequence of float
    mode_sizes : sequence of 3 int
    min_share : float
        Share of a level's images a triple needs to count as a stratum.

    Returns
    -------
    StrataSummary
    """
    ranks = np.asarray(ranks)
    if (
        ranks.ndim != 3
        or ranks.shape[2] != 3
        or ranks.shape[0] != len(levels)
        or not ranks.shape[1]
    ):
        raise DataShapeError(
            f"ranks must have shape (n_levels={len(levels)}, n_samples >= 1, 3); got {ranks.shape}."
        )
    n = ranks.shape[1]
    counts, seen, significant = [], set(), set()
    for level_ranks in ranks:
        c = Counter(tuple(int(v) for v in row) for row in level_ranks)
        ordered = tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
        counts.append(ordered)
        seen.update(c)
        significant.update(t for t, k in c.items() if k / n >= min_share)
    return StrataSummary(
        levels=np.asarray(levels, dtype=np.float64),
        mode_sizes=tuple(int(m) for m in mode_sizes),
        counts=tuple(counts),
        n_distinct=np.array([len(c) for c in counts]),
        n_strata=len(significant),
        n_strata_all=len(seen),
        mean_ranks=ranks.mean(axis=1),
        modal=tuple(c[0][0] for c in counts),
        modal_share=np.array([c[0][1] / n for c in counts]),
        change_rate=(ranks != ranks[:1]).any(axis=2).mean(axis=1),
        min_share=float(min_share),
    )


def sweep_strata(result: SweepResult, min_share: float = 0.01) -> StrataSummary:
    """:func:`strata` of a sweep; DataShapeError for a vector latent (no rank triples)."""
    if result.ranks is None:
        raise DataShapeError(_VECTOR_NOTE.format(shape=result.latent_shape))
    return strata(result.ranks, result.levels, result.latent_shape, min_share)


_VECTOR_NOTE = (
    "This checkpoint's latent is a vector {shape}, not a tensor (C, h, w): unfoldings, covariance "
    "ranks, strata and the Hilbert map of the factors need a spatial latent (train with "
    "spatial=true). What applies to a vector latent: the noise trajectory on the latent map, the "
    "principal subspaces of the latents themselves, the interpolation profile and the global "
    "descriptors."
)


def vector_latent_note(latent_shape: Sequence[int]) -> str:
    """Which analyses apply to a vector latent, in one paragraph."""
    return _VECTOR_NOTE.format(shape=tuple(latent_shape))


@dataclass(frozen=True)
class Verdict:
    """A computed plain-language reading of one sweep (lsx rule, see :func:`verdict`)."""

    label: str  # "smooth", "stratified" or "vector latent"
    text: str
    n_strata: int
    modal: Triple | None
    factors: tuple[str, ...] | None


def _fmt_level(result_levels: np.ndarray, i: int) -> str:
    return f"{result_levels[i]:g}"


def verdict(result: SweepResult, stable_share: float = 0.9, min_share: float = 0.01) -> Verdict:
    """Smooth or stratified, decided from the rank triples (lsx rule; the paper gives none).

    *Smooth* when the same rank triple is the most frequent at every level and holds at least
    ``stable_share`` of the images at each level; *stratified* otherwise, with the number of
    strata counted as in :func:`strata` (triples holding ``min_share`` of a level's images).

    Parameters
    ----------
    result : SweepResult
    stable_share, min_share : float

    Returns
    -------
    Verdict
    """
    sub = result.subspace
    last = len(result.levels) - 1
    drift = (
        f"principal subspace ({'Hilbert space' if sub.space == 'hilbert' else 'latent space'}, "
        f"k={sub.k}): Grassmann distance {sub.grassmann[last]:.2f} rad from the clean one at "
        f"level {_fmt_level(result.levels, last)}"
    )
    if result.ranks is None:
        disp = float(np.median(result.displacement[last]))
        text = (
            f"vector latent: no rank triples (see the note). Median latent displacement "
            f"{disp:.2f} x |z| at level {_fmt_level(result.levels, last)}; {drift}."
        )
        return Verdict("vector latent", text, 0, None, None)
    s = sweep_strata(result, min_share)
    modal = s.modal[0]
    factors = factor_types(modal, s.mode_sizes)
    kinds = " x ".join(factors)
    stable = len(set(s.modal)) == 1 and bool((s.modal_share >= stable_share).all())
    if stable:
        text = (
            f"ranks stable across noise: smooth. One stratum {modal} = {kinds} holds at least "
            f"{s.modal_share.min():.0%} of the images at every level; {drift}."
        )
        return Verdict("smooth", text, s.n_strata, modal, factors)
    moved = ", ".join(
        f"mode {m + 1} {s.mean_ranks[0, m]:.1f} -> {s.mean_ranks[last, m]:.1f}" for m in range(3)
    )
    text = (
        f"{s.n_strata} strata: stratified. Rank triples change with the perturbation (mean "
        f"ranks {moved}); {s.change_rate[last]:.0%} of the images leave their clean stratum at "
        f"level {_fmt_level(result.levels, last)}; clean modal stratum {modal} = {kinds}; {drift}."
    )
    return Verdict("stratified", text, s.n_strata, modal, factors)


def strata_rows(name: str, result: SweepResult, min_share: float = 0.01) -> list[dict[str, Any]]:
    """The strata/rank table of one sweep, one row per level (empty for a vector latent)."""
    if result.ranks is None:
        return []
    s = sweep_strata(result, min_share)
    rows = []
    for i, level in enumerate(s.levels):
        rows.append(
            {
                "model": name,
                "level": float(level),
                "strata": int(s.n_distinct[i]),
                "modal_triple": str(s.modal[i]),
                "modal_share": round(float(s.modal_share[i]), 3),
                "factors": " x ".join(factor_types(s.modal[i], s.mode_sizes)),
                "mean_r1": round(float(s.mean_ranks[i, 0]), 2),
                "mean_r2": round(float(s.mean_ranks[i, 1]), 2),
                "mean_r3": round(float(s.mean_ranks[i, 2]), 2),
                "changed": round(float(s.change_rate[i]), 3),
            }
        )
    return rows


def subspace_rows(name: str, result: SweepResult) -> list[dict[str, Any]]:
    """The subspace-angle table of one sweep, one row per level."""
    sub = result.subspace
    return [
        {
            "model": name,
            "level": float(level),
            "space": sub.space,
            "dim": int(sub.dims[i]) if not sub.capped[i] else f">={int(sub.dims[i])}",
            "captured": round(float(sub.captured[i]), 3),
            "k": sub.k,
            "mean_angle": round(float(sub.angles[i].mean()), 4),
            "max_angle": round(float(sub.angles[i].max()), 4),
            "grassmann": round(float(sub.grassmann[i]), 4),
            "centroid_shift": round(float(sub.centroid_shift[i]), 4),
        }
        for i, level in enumerate(result.levels)
    ]
