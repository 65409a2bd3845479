"""What each dictionary atom (scvae) or codebook vector (vqvae) does, shown the way sparse
dictionary features usually are: the decoded change when the atom is switched on at one latent
cell of the mean latent, and the inputs (and input patches) that activate it most.

Pure functions: a model plus arrays in, arrays and a small frozen dataclass out; the model is
used as given (eval mode, on CPU) under ``torch.inference_mode``. Usage statistics are in
:mod:`lsx.analysis.atoms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lsx.analysis.atoms import has_atoms, has_codebook
from lsx.analysis.embedding import _batch, _batches, _check_batch_size, check_images
from lsx.errors import ConfigError, DataShapeError


def grid_centre(model: nn.Module) -> tuple[int, int]:
    """The central cell ``(row, col)`` of the model's latent grid; ``(0, 0)`` for a vector."""
    shape = tuple(model.latent_shape)
    return (shape[1] // 2, shape[2] // 2) if len(shape) == 3 else (0, 0)


def atom_effects(
    model: nn.Module,
    vectors: np.ndarray,
    base: np.ndarray,
    *,
    scale: float | np.ndarray = 1.0,
    position: tuple[int, int] | None = None,
    replace: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """What each atom does: ``decode(base + s_k v_k at one position) - decode(base)``.

    The usual picture of a sparse-dictionary feature: start from the mean latent, switch one
    atom on at one grid position, and look at the change it makes to the decoded image.

    Parameters
    ----------
    model : nn.Module
        An lsx model whose latent has ``latent_dim`` channels (``latent_shape``).
    vectors : ndarray of shape (K, latent_dim)
        Atoms (``model.atoms``) or codebook vectors (``model.codebook``).
    base : ndarray of shape latent_shape
        The latent to start from, e.g. the mean latent of the data.
    scale : float or ndarray of shape (K,), default=1.0
        ``s_k``, e.g. ``AtomStats.mean_active`` (a typical coefficient). ``s = 0`` gives zeros.
    position : (row, col) or None
        The grid cell switched on (default :func:`grid_centre`); ignored for a vector latent.
    replace : bool, default=False
        False adds ``s_k v_k`` at the cell (a sparse code switched on); True puts ``s_k v_k``
        in the cell's place (a VQ-VAE position holds exactly one codebook vector).
    batch_size : int, default=64

    Returns
    -------
    effects : ndarray of shape (K, C, H, W), float32
        Signed pixel differences (not clipped; the viewer normalises each tile's contrast).

    Raises
    ------
    DataShapeError
        ``vectors``, ``base`` or ``position`` do not fit the model's latent.
    """
    _check_batch_size(batch_size)
    shape = tuple(model.latent_shape)  # (n,) or (n, h, w)
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != shape[0]:
        raise DataShapeError(
            f"vectors must have shape (K, {shape[0]}) for this model; got {v.shape}."
        )
    if tuple(np.shape(base)) != shape:
        raise DataShapeError(f"base must have shape {shape} (latent_shape); got {np.shape(base)}.")
    row, col = grid_centre(model) if position is None else position
    if len(shape) == 3 and not (0 <= row < shape[1] and 0 <= col < shape[2]):
        raise DataShapeError(
            f"position {(row, col)} is outside the {shape[1]}x{shape[2]} latent grid; use a cell "
            "in 0..h-1, 0..w-1."
        )
    coef = np.broadcast_to(np.asarray(scale, dtype=np.float32), (len(v),))
    b = np.asarray(base, dtype=np.float32)
    z = np.broadcast_to(b, (len(v), *shape)).copy()  # (K, n[, h, w])
    cell = (slice(None), slice(None), row, col) if len(shape) == 3 else (slice(None), slice(None))
    z[cell] = (0.0 if replace else z[cell]) + v * coef[:, None]
    out = np.empty((len(v), *model.config.input_shape), dtype=np.float32)
    with torch.inference_mode():
        ref = model.decode(torch.from_numpy(b[None])).float().numpy()  # (1, C, H, W)
        for sl in _batches(len(v), batch_size):
            out[sl] = model.decode(torch.from_numpy(z[sl])).float().numpy() - ref
    return out


@dataclass(frozen=True, eq=False)
class TopActivations:
    """The inputs (and latent cells) that activate each atom or code most.

    Attributes
    ----------
    index : ndarray of shape (K, top), int64
        Row of ``x`` of each example, strongest first; -1 where ``x`` has fewer rows than top.
    cell : ndarray of shape (K, top, 2), int64
        ``(row, col)`` of the latent cell where the atom is strongest in that input.
    value : ndarray of shape (K, top), float32
        The activation, descending along each row: max_p |s_kp| for an scvae, and
        -min_p ||z_e,p - e_k||^2 (closeness of the encoder output to the code) for a vqvae.
    grid : (h, w)
        The latent grid, ``(1, 1)`` for a vector latent.
    """

    index: np.ndarray
    cell: np.ndarray
    value: np.ndarray
    grid: tuple[int, int]


def _activations(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) activation of every atom or code at every cell of a batch."""
    if has_atoms(model):
        return model.code(xb).abs()
    z_e = model.encoder(xb)  # vqvae: (B, n, h, w) or (B, n)
    zp = z_e.movedim(1, -1) if z_e.dim() == 4 else z_e[:, None, None, :]  # (B, h, w, n)
    book = model.codebook  # (K, n)
    dist = zp.pow(2).sum(-1, keepdim=True) - 2 * zp @ book.t() + book.pow(2).sum(-1)
    return (-dist).movedim(-1, 1)  # (B, K, h, w)


def top_activations(
    model: nn.Module, x: np.ndarray, *, top: int = 8, batch_size: int = 256
) -> TopActivations:
    """The ``top`` inputs of ``x`` that activate each atom (scvae) or code (vqvae) most.

    Each input counts once per atom, at its strongest cell; the examples are sorted by
    activation, strongest first.

    Parameters
    ----------
    model : nn.Module
        An scvae (:func:`has_atoms`) or vqvae (:func:`has_codebook`), in eval mode.
    x : ndarray of shape (n_samples, C, H, W)
        Images in [0, 1], e.g. the training split.
    top : int, default=8
    batch_size : int, default=256

    Returns
    -------
    TopActivations

    Raises
    ------
    ConfigError
        The model has neither atoms nor a codebook, or ``top`` is not an int >= 1.
    """
    if not (has_atoms(model) or has_codebook(model)):
        raise ConfigError(
            f"Top activations need an 'scvae' or 'vqvae' model; got kind {model.config.kind!r}."
        )
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ConfigError(f"top must be an int >= 1 (examples per atom); got {top!r}.")
    _check_batch_size(batch_size)
    x = check_images(model, x)
    k = len(model.atoms if has_atoms(model) else model.codebook)
    best_v = np.full((k, top), -np.inf, np.float64)
    best_i = np.full((k, top), -1, np.int64)
    best_c = np.zeros((k, top), np.int64)  # flat cell index
    grid = (1, 1)
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size):
            act = _activations(model, _batch(x[sl])).double()  # (B, K, h, w)
            grid = (act.shape[2], act.shape[3])
            peak, where = act.flatten(2).max(-1)  # (B, K): strongest cell of each input
            vals = np.concatenate([best_v, peak.numpy().T], axis=1)  # (K, top + B)
            rows = np.arange(sl.start, sl.stop)
            idx = np.concatenate([best_i, np.broadcast_to(rows, (k, len(rows)))], axis=1)
            cells = np.concatenate([best_c, where.numpy().T], axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")[:, :top]
            best_v, best_i, best_c = (np.take_along_axis(a, order, 1) for a in (vals, idx, cells))
    missing = best_i < 0
    value = np.where(missing, np.nan, best_v).astype(np.float32)
    cell = np.stack([best_c // grid[1], best_c % grid[1]], axis=-1)
    return TopActivations(index=best_i, cell=cell, value=value, grid=grid)


def cell_patches(
    x: np.ndarray, index: np.ndarray, cell: np.ndarray, grid: tuple[int, int], *, margin: int = 1
) -> np.ndarray:
    """The input patch under each latent cell: the cell's share of the image plus ``margin``
    cells around it (a decoder cell reaches its neighbours), cut from the full images.

    Parameters
    ----------
    x : ndarray of shape (n_samples, C, H, W)
    index : ndarray of shape (m,), int
        Rows of ``x`` (``TopActivations.index`` flattened; -1 gives a blank patch).
    cell : ndarray of shape (m, 2), int
        ``(row, col)`` of each latent cell.
    grid : (h, w)
        The latent grid; ``(1, 1)`` returns the whole images.
    margin : int, default=1

    Returns
    -------
    patches : ndarray of shape (m, C, ph, pw), float32
        All the same size; a patch at the border is shifted inside the image.
    """
    x = np.asarray(x)
    _, c, height, width = x.shape
    h, w = grid
    ph = min(height, round(height / h * (1 + 2 * margin)))
    pw = min(width, round(width / w * (1 + 2 * margin)))
    out = np.zeros((len(index), c, ph, pw), np.float32)
    for j, (i, (r, q)) in enumerate(zip(np.asarray(index), np.asarray(cell), strict=True)):
        if i < 0:
            continue
        cy, cx = (r + 0.5) * height / h, (q + 0.5) * width / w  # centre of the cell, in pixels
        top_ = int(np.clip(round(cy - ph / 2), 0, height - ph))
        left = int(np.clip(round(cx - pw / 2), 0, width - pw))
        out[j] = x[i, :, top_ : top_ + ph, left : left + pw]
    return out
