"""Latent-manifold diagnostics of autoencoders under input perturbation (docs/methods.md).

Shrivastava, Rameshan & Agnihotri (2025), "Latent space characterization of autoencoder variants"
(arXiv 2412.04755): unfold each encoded latent tensor along its three modes, take one covariance
matrix per unfolding, and read the ranks of the three matrices as the stratum of the point; CAE and
DAE ranks vary with input noise (a stratified latent manifold), the VAE's stay put (one smooth
product manifold SPD x SPD x SPSD). The paper's published details are thin: every choice marked
**lsx interpretation** in this package is ours (docs/methods.md tags them [INF]), not the paper's.

Pipeline (one pass over the images, in batches; see :func:`sweep`):

1. perturb every image at every level (Gaussian noise, blur or occlusion; seeded per image, the
   same noise draw at every level: common random numbers, so a sample's path is smooth in sigma);
2. encode (a VAE's latent is its posterior mean) -> tensors ``(C, h, w)``;
3. unfold along the three modes, covariance per unfolding (:func:`mode_covariances`), eigenvalues
   (:func:`spectra`), numerical ranks (:func:`numerical_rank`) -> one rank triple per image;
4. map the three factors into a Hilbert space (:func:`hilbert_map`) and, per level, find the
   principal subspace of the mapped points; compare it with the clean one (principal angles,
   Grassmann distance);
5. summaries: strata per level (:func:`strata`), a plain-language :func:`verdict`.

Plus, for any checkpoint (vector latents too): :func:`interpolation_profile` (smoothness along a
decoded linear path) and :func:`global_descriptors` (effective rank, participation ratio,
intrinsic dimension, trustworthiness of a 2-D projection).

Pure functions: a model plus arrays in, arrays and small frozen dataclasses out; seeds are
arguments; the model is never mutated (it must already be in eval mode).

Layout (import from this package; the modules are an implementation detail):

- :mod:`~lsx.analysis.manifold.perturbations`: perturbation kinds, levels, seeded noise (step 1);
- :mod:`~lsx.analysis.manifold.factors`: unfoldings, mode covariances, spectra, ranks (step 3);
- :mod:`~lsx.analysis.manifold.hilbert`: log-Euclidean and Hilbert maps of the factors (step 4);
- :mod:`~lsx.analysis.manifold.subspaces`: principal subspaces, angles, Grassmann distance;
- :mod:`~lsx.analysis.manifold.sweeps`: :class:`SweepConfig`, :func:`sweep`, :class:`SweepResult`;
- :mod:`~lsx.analysis.manifold.summaries`: strata, verdict, tables (step 5);
- :mod:`~lsx.analysis.manifold.descriptors`: interpolation profile and global descriptors.
"""

from __future__ import annotations

from lsx.analysis.manifold.descriptors import (
    GlobalDescriptors,
    PathProfile,
    covariance_spectrum,
    effective_rank,
    global_descriptors,
    interpolation_profile,
    intrinsic_dimension_mle,
    intrinsic_dimension_twonn,
    participation_ratio,
    trustworthiness_2d,
)
from lsx.analysis.manifold.factors import (
    FLOAT32_EPS,
    MODES,
    SPD,
    SPSD,
    factor_types,
    mode_covariances,
    numerical_rank,
    rank_tolerance,
    rank_triples,
    spectra,
    unfold,
)
from lsx.analysis.manifold.hilbert import (
    SPSD_MAPS,
    SQRT2,
    hilbert_features,
    hilbert_map,
    log_euclidean,
    log_euclidean_distance,
    sym_vec,
)
from lsx.analysis.manifold.perturbations import (
    MAX_LEVELS,
    PERTURBATIONS,
    PerturbationSpec,
    apply_perturbation,
    check_levels,
    perturb,
    perturbation_noise,
    perturbation_spec,
)
from lsx.analysis.manifold.subspaces import (
    SubspaceResult,
    _StreamingSubspace,  # noqa: F401  (the tests check it against sklearn's IncrementalPCA)
    energy_dimension,
    grassmann_distance,
    principal_angles,
    principal_subspace,
)
from lsx.analysis.manifold.summaries import (
    StrataSummary,
    Triple,
    Verdict,
    strata,
    strata_rows,
    subspace_rows,
    sweep_strata,
    vector_latent_note,
    verdict,
)
from lsx.analysis.manifold.sweeps import LOG_FLOOR, SweepConfig, SweepResult, sweep

__all__ = [
    "FLOAT32_EPS",
    "LOG_FLOOR",
    "MAX_LEVELS",
    "MODES",
    "PERTURBATIONS",
    "SPD",
    "SPSD",
    "SPSD_MAPS",
    "SQRT2",
    "GlobalDescriptors",
    "PathProfile",
    "PerturbationSpec",
    "StrataSummary",
    "SubspaceResult",
    "SweepConfig",
    "SweepResult",
    "Triple",
    "Verdict",
    "apply_perturbation",
    "check_levels",
    "covariance_spectrum",
    "effective_rank",
    "energy_dimension",
    "factor_types",
    "global_descriptors",
    "grassmann_distance",
    "hilbert_features",
    "hilbert_map",
    "interpolation_profile",
    "intrinsic_dimension_mle",
    "intrinsic_dimension_twonn",
    "log_euclidean",
    "log_euclidean_distance",
    "mode_covariances",
    "numerical_rank",
    "participation_ratio",
    "perturb",
    "perturbation_noise",
    "perturbation_spec",
    "principal_angles",
    "principal_subspace",
    "rank_tolerance",
    "rank_triples",
    "spectra",
    "strata",
    "strata_rows",
    "subspace_rows",
    "sweep",
    "sweep_strata",
    "sym_vec",
    "trustworthiness_2d",
    "unfold",
    "vector_latent_note",
    "verdict",
]
