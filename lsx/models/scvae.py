"""SC-VAE: sparse-coding VAE with learned ISTA (P. Xiao, P. Qiu, S. Ha, A. Bani, S. Zhou,
A. Sotiras, arXiv 2303.16666, 2023; Pattern Recognition 161, 2025; docs/methods.md and
Appendix A.2; official code sotiraslab/SC-VAE).

An encoder maps the image to a latent grid ``z_e`` of shape (latent_dim, h, w) (a vector latent
is a 1x1 grid). At every grid position an unrolled ISTA solves the lasso problem

    s* = argmin_s  1/2 ||z_p - D s||^2 + lam ||s||_1,     D = atoms.T of shape (latent_dim, K)

and the decoder reconstructs the image from ``D s`` (docs/methods.md). The loss is
``MSE(x, x_tilde) + latent_weight * MSE(z_e, D s) (+ l1_weight * mean ||s||_1)`` (docs/methods.md).

Iteration t (textbook ISTA, s_0 = 0), with L = ||D||_2^2 (squared spectral norm):

    s_t = soft(s_{t-1} - eta_t D^T (D s_{t-1} - z),  eta_t * lam_t),   eta_t = step_t / L

``step_t`` and ``lam_t`` are learnable (shared or one per iteration). With step 1 and a fixed
``lam`` this is plain ISTA with step 1/L, which converges to the lasso solution; scikit-learn's
``Lasso(alpha=lam / latent_dim, fit_intercept=False)`` on X = D, y = z_p (or
``SparseCoder(atoms, transform_algorithm="lasso_cd", transform_alpha=lam)``) solves the same
problem (tests/models/test_scvae.py checks it).

Pitfalls of the official code, avoided here (docs/methods.md):
- the first iterate was ``soft(D^T z, lam / c)`` without the 1/c scaling; lsx starts at s_0 = 0,
  so s_1 = soft(D^T z / L, lam / L) as in textbook ISTA;
- the latent term was weighted 1/(h*w*d) (negligible); lsx weights it 0.1 (``latent_weight``;
  measured on mnist5k, 4 epochs: test recon MSE 0.0055 with 0.1, 0.0185 with 1, which
  docs/methods.md suggests; with 1 it needed 12 epochs to reach 0.0052);
- lam was read from a config key missing in the yaml; here it is a validated field;
- the step c was an unconstrained parameter, so ISTA could diverge (NaN codes); lsx keeps
  ``step_t = 2 * sigmoid(rho_t)`` inside (0, 2), the range where ISTA cannot diverge, with L
  recomputed from the current atoms; a trainable dictionary keeps unit-norm atoms.
Gradient clipping (docs/methods.md, third-party fork) is the trainer's ``grad_clip``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig, option
from lsx.errors import ConfigError, TrainingError
from lsx.models.base import Decoder, Encoder, Losses, check_input, latent_shape, per_sample_mse

DICT_INITS = ("dct", "random")
ISTA_PARAMS = ("shared", "per_step")
LATENT_NORMS = ("rms", "none")


@dataclass(frozen=True)
class SCVAEConfig(ModelConfig):
    kind = "scvae"
    # an atom is a point of the latent space: it needs 2 or more numbers (the base allows 1)
    latent_dim: int = option(16, low=2, high=4096, low_is="an atom needs 2 or more numbers")
    n_atoms: int = option(
        64, "K, dictionary size (official: 512 atoms of dimension 256)", low=2, high=4096
    )
    n_ista_steps: int = option(
        16, "T, unrolled ISTA iterations (official yaml: 16 or 30)", low=1, high=10_000
    )
    lam: float = option(
        0.5,
        'lasso weight: threshold = step / L * lam; official yaml "alpha" 0.5-3',
        low=0.0,
        low_open=True,
    )
    # (with latent_norm "rms", ||z_p|| = sqrt(latent_dim): lam is relative to that scale)
    step: float = option(1.0, "initial step in units of 1/L; ISTA converges for 0 < step < 2")
    learn_step: bool = option(
        True, "official: learnable c (step 1/c); NOT FOUND whether per iteration"
    )
    learn_threshold: bool = option(
        True, "NOT FOUND in P2 (official lam is fixed); lsx default: learned"
    )
    ista_params: str = option(
        "shared",
        "step and lam shared by all iterations or one per iteration",
        choices=ISTA_PARAMS,
    )
    learn_dict: bool = option(False, 'P2 v2: "predetermined" atoms; official code: trainable')
    dict_init: str = option(
        "dct",
        "overcomplete DCT (official) or random (the authors' ablation)",
        choices=DICT_INITS,
    )
    latent_norm: str = option(
        "rms",
        "z_e scaled to unit RMS per position; NOT FOUND in P2, see docstring",
        choices=LATENT_NORMS,
    )
    latent_weight: float = option(
        0.1, "weight of MSE(z_e, D s); official 1/(h*w*d), see docstring", low=0.0
    )
    l1_weight: float = option(
        0.0, "optional L1 on the codes; official: none (sparsity from ISTA)", low=0.0
    )

    def __post_init__(self) -> None:
        super().__post_init__()  # checks every field's declared rule (lsx.config.check_fields)
        if not 0.0 < self.step < 2.0:
            raise ConfigError(
                "The 'step' field of SCVAEConfig must be a number in (0, 2) (units of 1/L; "
                f"ISTA diverges at 2 and above). Got {self.step!r} instead."
            )


def _dct_1d(n: int, m: int, center: bool = True) -> np.ndarray:
    """(n, m) overcomplete 1-D DCT: V_k[t] = cos(t k pi / m) (mean removed for k > 0 when
    ``center``), unit-norm columns."""
    v = np.cos(np.outer(np.arange(n), np.arange(m)) * np.pi / m)  # (n, m)
    if center:
        v[:, 1:] -= v[:, 1:].mean(axis=0, keepdims=True)
    return v / np.linalg.norm(v, axis=0, keepdims=True)


def overcomplete_dct(latent_dim: int, n_atoms: int) -> torch.Tensor:
    """Overcomplete DCT atoms, one per row, shape (n_atoms, latent_dim), unit norm.

    When ``latent_dim`` is a square (16, 64, 256, ...) this is the official 2-D construction
    (``init_dct(sqrt(latent_dim), ceil(sqrt(n_atoms)))``: Kronecker product of two 1-D DCTs, rows
    reordered, first ``n_atoms`` columns; for 256 x 512 it equals docs/methods.md); else the 1-D
    overcomplete DCT with ``n_atoms`` frequencies (NOT FOUND in P2; lsx generalisation), without
    the mean removal: removing it leaves one atom on the all-ones direction and the rest
    orthogonal to it, so D D^T is badly conditioned and T ISTA steps barely move along that
    direction (3 x 64: eigenvalues 1, 19, 44 with it; 14, 15, 34 without).
    """
    side = math.isqrt(latent_dim)
    if side * side == latent_dim and side > 1:
        v = _dct_1d(side, math.ceil(math.sqrt(n_atoms)))
        d = np.kron(v, v)  # (side^2, m^2)
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        idx = np.arange(latent_dim).reshape(side, side, order="F").reshape(latent_dim, order="C")
        d = d[idx, :n_atoms]
    else:
        d = _dct_1d(latent_dim, n_atoms, center=False)
    return torch.from_numpy(np.ascontiguousarray(d.T)).float()  # atoms = D.T


def soft_threshold(u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """sign(u) * max(|u| - theta, 0), the proximal map of theta * ||.||_1."""
    return torch.sign(u) * F.relu(u.abs() - theta)


class LearnedISTA(nn.Module):
    """T unrolled ISTA steps over a dictionary of K atoms: z (..., n) -> codes s (..., K).

    Parameters (``rho``: step = 2 sigmoid(rho); ``log_lam``: lam = exp(log_lam)) are shape (1,)
    when shared, (T,) per iteration; a frozen one is a buffer, so checkpoints keep it.
    """

    def __init__(self, config: SCVAEConfig) -> None:
        super().__init__()
        self.n_steps, self.normalize = config.n_ista_steps, config.learn_dict
        if config.dict_init == "dct":
            atoms = overcomplete_dct(config.latent_dim, config.n_atoms)
        else:  # uniform(-1, 1) like the authors' commented-out ablation, then unit norm
            atoms = F.normalize(torch.rand(config.n_atoms, config.latent_dim) * 2 - 1, dim=1)
        n = config.n_ista_steps if config.ista_params == "per_step" else 1
        rho = torch.full((n,), math.log(config.step / (2 - config.step)))  # 2 sigmoid(rho) = step
        log_lam = torch.full((n,), math.log(config.lam))
        for name, value, learn in (
            ("atoms_raw", atoms, config.learn_dict),  # (K, n), one atom per row
            ("rho", rho, config.learn_step),
            ("log_lam", log_lam, config.learn_threshold),
        ):
            if learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    @property
    def atoms(self) -> torch.Tensor:
        """(K, n) atoms in use: unit-norm rows when the dictionary is trainable."""
        if not self.normalize:
            return self.atoms_raw
        return self.atoms_raw / self.atoms_raw.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def lipschitz(self) -> torch.Tensor:
        """L = ||D||_2^2, the Lipschitz constant of the gradient of 1/2 ||z - D s||^2 (detached)."""
        return torch.linalg.matrix_norm(self.atoms.detach(), ord=2).pow(2)

    def steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Step sizes eta_t and lasso weights lam_t, each (T,)."""
        eta = 2 * torch.sigmoid(self.rho) / self.lipschitz()
        return eta.expand(self.n_steps), self.log_lam.exp().expand(self.n_steps)

    def check_finite(self) -> None:
        """TrainingError when the dictionary, step or threshold has diverged to NaN/Inf."""
        for name in ("atoms_raw", "rho", "log_lam"):
            value = getattr(self, name)
            if not torch.isfinite(value).all():
                bad = int((~torch.isfinite(value)).sum())
                raise TrainingError(
                    f"The SC-VAE dictionary has diverged: {bad} of {value.numel()} values of "
                    f"'{name}' are NaN/Inf, so every sparse code would be NaN. Resume from an "
                    "earlier checkpoint with a lower --lr, or keep the dictionary frozen "
                    "(--learn-dict false)."
                )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        atoms = self.atoms  # (K, n)
        eta, lam = self.steps()  # (T,), (T,)
        y = z @ atoms.t()  # D^T z, (..., K)
        s = soft_threshold(eta[0] * y, eta[0] * lam[0])  # s_1 from s_0 = 0
        for t in range(1, self.n_steps):
            grad = (s @ atoms) @ atoms.t() - y  # D^T (D s - z), (..., K)
            s = soft_threshold(s - eta[t] * grad, eta[t] * lam[t])
        return s


class SCVAE(nn.Module):
    """Encoder -> learned ISTA per grid position -> decoder on ``D s``."""

    def __init__(self, config: SCVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)  # z_e: (B, n, h, w) spatial, else (B, n)
        self.ista = LearnedISTA(config)
        self.decoder = Decoder(config)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    @property
    def atoms(self) -> torch.Tensor:
        """(n_atoms, latent_dim) dictionary, one atom per row (``D.T``)."""
        return self.ista.atoms

    def _sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output z_e (B, *latent_shape) and codes s, channels last (B, [h, w,] K)."""
        self.ista.check_finite()
        z_e = self.encoder(x)
        if self.config.latent_norm == "rms":  # ||z_p|| = sqrt(n): lam keeps one meaning
            z_e = z_e * torch.rsqrt(z_e.pow(2).mean(1, keepdim=True) + 1e-6)
        zp = z_e.movedim(1, -1) if z_e.dim() == 4 else z_e  # (B, h, w, n) or (B, n)
        return z_e, self.ista(zp)

    def _synth(self, s: torch.Tensor) -> torch.Tensor:
        """D s back to the latent layout (B, *latent_shape)."""
        z_hat = s @ self.atoms  # (B, [h, w,] n)
        return z_hat.movedim(-1, 1) if z_hat.dim() == 4 else z_hat

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``D s``: the sparse reconstruction of the encoder output, (B, *latent_shape).

        This is the latent the decoder sees and that lsx.analysis maps; the sparse codes
        themselves come from :meth:`code`.
        """
        return self._synth(self._sparse(x)[1])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, *latent_shape) -> (B, C, H, W) in [0, 1]."""
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        """Image MSE + latent_weight * MSE(z_e, D s) + l1_weight * mean_p ||s_p||_1.

        Non-finite codes give a non-finite total, which the trainer skips, rolls back and
        finally stops on with a message; a diverged dictionary is a TrainingError here.
        """
        check_input(x, self.config)
        z_e, s = self._sparse(x)
        z_hat = self._synth(s)
        recon = per_sample_mse(self.decode(z_hat), x).mean()
        latent = (z_e - z_hat).pow(2).mean()  # weighted latent_weight, not 1/(h*w*d)
        l1 = s.abs().sum(-1).mean()  # mean over positions of ||s_p||_1
        total = recon + self.config.latent_weight * latent + self.config.l1_weight * l1
        return Losses(total=total, terms={"recon": recon, "latent": latent, "l1": l1})

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse codes, (B, n_atoms, h, w); a vector latent gives h = w = 1.

        Raises
        ------
        TrainingError
            The codes are NaN/Inf (a diverged dictionary or encoder).
        """
        check_input(x, self.config)
        s = self._sparse(x)[1]
        if not torch.isfinite(s).all():
            raise TrainingError(
                f"The sparse codes went NaN/Inf for {int((~torch.isfinite(s)).sum())} entries: the "
                "encoder or dictionary of this checkpoint has diverged. Retrain it with a lower "
                "--lr (gradient clipping is on by default)."
            )
        return s.movedim(-1, 1) if s.dim() == 4 else s[:, :, None, None]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)
