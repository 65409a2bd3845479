"""VQ-VAE (A. van den Oord, O. Vinyals, K. Kavukcuoglu, "Neural Discrete Representation
Learning", NeurIPS 2017): the vector-quantised baseline that SC-VAE is compared against
(docs/methods.md), at the same latent grid and dictionary size K.

The encoder maps the image to a grid ``z_e`` of shape (latent_dim, h, w) (a vector latent is a
1x1 grid); each position is replaced by its nearest of K codebook vectors ``e_k``; the decoder
reconstructs the image from the quantised grid ``z_q``. Loss (van den Oord et al., eq. 3):

    MSE(x, x_tilde) + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2

with straight-through gradients ``z_q = z_e + sg[e - z_e]``.

The defaults are the plain VQ-VAE (codes moved by the codebook loss, no restarts, uniform
init), so old checkpoints load unchanged. Three standard remedies against codebook collapse are
options, all applied in training mode only, under ``no_grad``, inside :meth:`VQVAE.loss`:

- ``codebook_update="ema"``: codes are exponential moving averages of the encoder outputs
  assigned to them (van den Oord et al., appendix A.1; Sonnet's ``VectorQuantizerEMA``), with
  Laplace-smoothed cluster sizes; the codebook term leaves the objective (it is still logged);
- ``dead_code_restart=N``: a code unused for N training steps in a row is moved onto a random
  encoder output of the current batch;
- ``kmeans_init``: the first training batch's encoder outputs are clustered (k-means++ then
  Lloyd) and the codebook starts at the centres.

Their state (EMA statistics, idle steps, restart count, whether k-means ran) is kept in
registered buffers, saved in ``model.safetensors``; a buffer exists only when its option is on.
Under multi-process training DDP broadcasts rank 0's buffers at every forward, so the codebook
follows rank 0's batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsx.config import ModelConfig, option
from lsx.models.base import Decoder, Encoder, Losses, check_input, latent_shape, per_sample_mse

EMA_EPS = 1e-5  # Laplace smoothing of the cluster sizes (Sonnet's VectorQuantizerEMA default)
KMEANS_ITERS = 20  # Lloyd iterations of the k-means initialisation


@dataclass(frozen=True)
class VQVAEConfig(ModelConfig):
    kind = "vqvae"
    n_codes: int = option(
        64, "K codebook vectors, matched to scvae's n_atoms for comparisons", low=2, high=65_536
    )
    commitment: float = option(
        0.25, "beta of the commitment term (van den Oord et al.: 0.25)", low=0.0
    )
    codebook_update: str = option(
        "loss",
        '"loss": codes move by the codebook loss; "ema": moving averages of their encoder outputs',
        choices=("loss", "ema"),
    )
    ema_decay: float = option(
        0.99, "decay of the EMA codebook update (used when codebook_update is ema)", low=0.0,
        high=0.9999,
    )  # fmt: skip
    dead_code_restart: int = option(
        0, "restart codes unused for this many training steps onto encoder outputs (0: off)",
        low=0, high=1_000_000,
    )  # fmt: skip
    kmeans_init: bool = option(
        False, "start the codebook at k-means centres of the first batch's encoder outputs"
    )


def kmeans(
    points: torch.Tensor,
    k: int,
    iters: int = KMEANS_ITERS,
    init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Centres (k, D) of ``points`` (N, D): k-means++ seeding (or ``init``), then Lloyd's
    iterations until no assignment changes or ``iters`` ran. An empty cluster keeps its centre.
    Fewer points than ``k`` reuse points as centres (dead-code restarts can separate them)."""
    n = points.shape[0]
    if init is not None:
        centres = init.to(points).clone()
    elif n <= k:
        rows = torch.randint(n, (k,), generator=generator, device=points.device)
        return points[rows].clone()
    else:  # k-means++ (Arthur & Vassilvitskii 2007): each next seed drawn with p ~ D(x)^2
        rows = [int(torch.randint(n, (1,), generator=generator, device=points.device))]
        d2 = (points - points[rows[0]]).pow(2).sum(1)
        for _ in range(k - 1):
            weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
            rows.append(int(torch.multinomial(weights, 1, generator=generator)))
            d2 = torch.minimum(d2, (points - points[rows[-1]]).pow(2).sum(1))
        centres = points[rows].clone()
    assign = None
    for _ in range(iters):
        new_assign = torch.cdist(points, centres).argmin(1)
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres


class VQVAE(nn.Module):
    """Encoder -> nearest codebook vector per grid position -> decoder."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)  # z_e: (B, n, h, w) spatial, else (B, n)
        self.decoder = Decoder(config)
        k, n = config.n_codes, config.latent_dim
        # uniform(-1/K, 1/K), the common VQ-VAE init (NOT FOUND in P2; lsx default)
        self.codebook = nn.Parameter(torch.empty(k, n).uniform_(-1 / k, 1 / k))
        self.ema = config.codebook_update == "ema"
        if self.ema:
            self.codebook.requires_grad_(False)  # moved by the EMA, never by the optimiser
            # one pseudo-count per code, at the code: the first update is a weighted mean of
            # the old code and its batch, not a division by a near-zero cluster size
            self.register_buffer("ema_cluster_size", torch.ones(k))
            self.register_buffer("ema_w", self.codebook.detach().clone())
        if config.dead_code_restart:
            self.register_buffer("idle_steps", torch.zeros(k, dtype=torch.int64))
            self.register_buffer("restarts", torch.zeros((), dtype=torch.int64))
        if config.kmeans_init:
            self.register_buffer("kmeans_done", torch.zeros((), dtype=torch.bool))
        self._kmeans_seen = False  # host-side cache of kmeans_done: one device read, not one a step

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return latent_shape(self.config)

    @staticmethod
    def _rows(z_e: torch.Tensor) -> torch.Tensor:
        """Encoder outputs as rows (B*h*w, n)."""
        zp = z_e.movedim(1, -1) if z_e.dim() == 4 else z_e[:, None, None, :]
        return zp.reshape(-1, zp.shape[-1])

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z_e, codebook vectors e (both (B, *latent_shape)) and indices (B, h, w)."""
        z_e = self.encoder(x)
        return (z_e, *self._nearest(z_e))

    def _nearest(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zp = z_e.movedim(1, -1) if z_e.dim() == 4 else z_e[:, None, None, :]  # (B, h, w, n)
        book = self.codebook  # (K, n)
        with torch.no_grad():  # argmin has no gradient; keeps `book` out of the saved graph
            dist = zp.pow(2).sum(-1, keepdim=True) - 2 * zp @ book.t() + book.pow(2).sum(-1)
            idx = dist.argmin(-1)  # (B, h, w)
        e = book[idx]  # (B, h, w, n)
        e = e.movedim(-1, 1) if z_e.dim() == 4 else e[:, 0, 0, :]
        return e, idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Quantised latent ``z_q`` (B, *latent_shape): the codebook vector at each position."""
        return self._quantize(x)[1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, *latent_shape) -> (B, C, H, W) in [0, 1]; ``z`` is decoded as given (no snapping
        to the codebook), so points between codes can be decoded too."""
        return self.decoder(z)

    @torch.no_grad()
    def init_codebook(self, rows: torch.Tensor) -> None:
        """Codebook (and EMA statistics) from k-means over encoder outputs ``rows`` (N, n)."""
        centres = kmeans(rows.detach().float(), self.config.n_codes)
        self.codebook.copy_(centres)
        if self.ema:
            self.ema_w.copy_(centres)
            self.ema_cluster_size.fill_(1.0)
        self.kmeans_done.fill_(True)
        self._kmeans_seen = True

    @torch.no_grad()
    def update_codebook(self, rows: torch.Tensor, idx: torch.Tensor) -> None:
        """One training step's EMA update and dead-code restarts, from the encoder outputs
        ``rows`` (N, n) and their code indices ``idx`` (N,)."""
        rows, idx = rows.detach().float(), idx.reshape(-1)
        k = self.config.n_codes
        counts = torch.bincount(idx, minlength=k).to(rows.dtype)
        if self.ema:
            d = self.config.ema_decay
            self.ema_cluster_size.mul_(d).add_(counts, alpha=1 - d)
            dw = torch.zeros_like(self.ema_w).index_add_(0, idx, rows)
            self.ema_w.mul_(d).add_(dw, alpha=1 - d)
            size = self.ema_cluster_size
            total = size.sum()
            smoothed = (size + EMA_EPS) / (total + k * EMA_EPS) * total
            self.codebook.copy_(self.ema_w / smoothed[:, None])
        if self.config.dead_code_restart:
            self.idle_steps.copy_(torch.where(counts > 0, 0, self.idle_steps + 1))
            dead = self.idle_steps >= self.config.dead_code_restart  # (K,)
            n = rows.shape[0]  # distinct rows where the batch has enough of them
            if n >= k:
                pick = torch.randperm(n, device=rows.device)[:k]
            else:
                pick = torch.randint(n, (k,), device=rows.device)
            # branch-free (no host read): only the dead codes take their new value
            new = rows[pick]
            self.codebook.copy_(torch.where(dead[:, None], new, self.codebook))
            if self.ema:
                self.ema_w.copy_(torch.where(dead[:, None], new, self.ema_w))
                self.ema_cluster_size.copy_(torch.where(dead, 1.0, self.ema_cluster_size))
            self.idle_steps.masked_fill_(dead, 0)
            self.restarts.add_(dead.sum())

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Losses:
        check_input(x, self.config)
        z_e = self.encoder(x)
        learning = self.training and torch.is_grad_enabled()
        if learning and self.config.kmeans_init and not self._kmeans_seen:
            if bool(self.kmeans_done):  # loaded or resumed after the initialisation
                self._kmeans_seen = True
            else:
                self.init_codebook(self._rows(z_e))
        e, idx = self._nearest(z_e)
        z_q = z_e + (e - z_e).detach()  # straight-through estimator
        recon = per_sample_mse(self.decode(z_q), x).mean()
        codebook = F.mse_loss(e, z_e.detach())  # moves the codes to the encoder outputs
        commitment = F.mse_loss(z_e, e.detach())  # keeps the encoder near its code
        total = recon + self.config.commitment * commitment
        if self.ema:  # the codes follow the EMA; the term is only logged
            codebook = codebook.detach()
        else:
            total = total + codebook
        if learning and (self.ema or self.config.dead_code_restart):
            self.update_codebook(self._rows(z_e), idx)  # after e was taken: the step used old codes
        return Losses(
            total=total, terms={"recon": recon, "codebook": codebook, "commitment": commitment}
        )

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices, (B, h, w) int64; a vector latent gives h = w = 1."""
        check_input(x, self.config)
        return self._quantize(x)[2]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # inference only
        return self.reconstruct(x)
