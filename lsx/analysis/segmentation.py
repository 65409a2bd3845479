"""Unsupervised segmentation by clustering patch codes (SC-VAE's downstream task, docs/methods.md).

Recipe (docs/methods.md, details NOT FOUND in P2; lsx choices marked):
1. the image is cut into tiles of the model's input size (edge-padded to whole tiles; lsx) and
   every tile is encoded; each latent grid cell is one image patch (4x4 pixels for the conv nets
   of lsx.models.base, the whole tile for a vector latent);
2. the feature of a patch is its sparse code ``s_p`` (scvae), else the latent ``encode(x)`` at
   that cell (vqvae: its codebook vector; ae/vae: z), l2-normalised (docs/methods.md);
3. k-means (scikit-learn, seeded, k chosen by the user) over the patches of this image;
4. the patch label map is upsampled (nearest) to the image size.
Tiles are encoded independently, so a tile border can show as a seam in the labels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lsx.analysis.atoms import has_atoms
from lsx.analysis.embedding import _batches, _check_batch_size
from lsx.errors import ConfigError, DataShapeError

MIN_K, MAX_K = 2, 16
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's convert("L")


def _sklearn_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


# Built-in photos, all bundled with the installed packages (offline): name -> loader of uint8
# (H, W, 3). china/flower: scikit-learn, CC BY 2.0; astronaut, coffee, chelsea: scikit-image
# (public domain / CC0 / "no known copyright restrictions", see their docstrings).
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "china": _sklearn_photo("china.jpg"),
    "flower": _sklearn_photo("flower.jpg"),
    "astronaut": _skimage_photo("astronaut"),
    "coffee": _skimage_photo("coffee"),
    "chelsea": _skimage_photo("chelsea"),
}


def load_photo(name: str) -> np.ndarray:
    """A built-in photo as float32 (3, H, W) in [0, 1].

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones).
    """
    if name not in PHOTOS:
        raise ConfigError(f"Unknown photo {name!r}; built-in photos: {', '.join(PHOTOS)}.")
    rgb = np.asarray(PHOTOS[name](), dtype=np.float32) / 255.0  # (H, W, 3)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def match_channels(image: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
    """Convert a (C, H, W) image to the model's channel count and say what was done.

    Returns
    -------
    image : ndarray of shape (channels, H, W), float32
    note : str
        Empty when nothing was converted.
    """
    c = image.shape[0]
    if c == channels:
        return image, ""
    if c == 1:
        return np.repeat(image, 3, axis=0), (
            "The image is greyscale but the model expects RGB: the grey channel was copied to "
            "R, G and B."
        )
    grey = np.tensordot(LUMA, image, axes=1)[None].astype(np.float32)
    return grey, "The image is RGB but the model expects greyscale: it was converted to grey."


@dataclass(frozen=True, eq=False)
class Segmentation:
    """A k-means segmentation of one image by its patch codes.

    Attributes
    ----------
    labels : ndarray of shape (H, W), int64
        Cluster of every pixel (0 .. k - 1).
    grid_labels : ndarray of shape (grid_h, grid_w), int64
        Cluster of every patch.
    patch : (int, int)
        Patch size in pixels (height, width).
    n_tiles : int
        Tiles of the model's input size that were encoded.
    k : int
        Clusters used (lower than asked when the image has fewer distinct patches).
    notes : tuple of str
        What was converted or changed, for the user.
    seconds : float
        Wall time of encoding plus clustering.
    """

    labels: np.ndarray
    grid_labels: np.ndarray
    patch: tuple[int, int]
    n_tiles: int
    k: int
    notes: tuple[str, ...]
    seconds: float


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] not in (1, 3) or not np.issubdtype(image.dtype, np.number):
        raise DataShapeError(
            f"The image must be a numeric (C, H, W) array with 1 or 3 channels, or (H, W); got "
            f"shape {np.shape(image)}."
        )
    image = np.ascontiguousarray(image, dtype=np.float32)
    if not np.isfinite(image).all():
        raise DataShapeError("The image contains NaN or Inf values.")
    return image


def patch_features(model: nn.Module, tiles: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Per-patch features of tiles of the model's input size.

    Parameters
    ----------
    tiles : ndarray of shape (n_tiles, C, H, W)

    Returns
    -------
    ndarray of shape (n_tiles, n_features, h, w), float32
        Sparse codes for an scvae (n_features = n_atoms), else the latent (latent_dim).
    """
    use_codes = has_atoms(model)
    out = []
    with torch.inference_mode():
        for sl in _batches(len(tiles), batch_size):
            xb = torch.from_numpy(tiles[sl])
            f = model.code(xb) if use_codes else model.encode(xb)
            out.append((f if f.dim() == 4 else f[:, :, None, None]).float().numpy())
    return np.concatenate(out)


def segment_image(
    model: nn.Module,
    image: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
) -> Segmentation:
    """Segment one image by k-means over its patch codes (module docstring for the recipe).

    Parameters
    ----------
    model : nn.Module
        An lsx model in eval mode (any kind; an scvae clusters its sparse codes).
    image : ndarray of shape (C, H, W) or (H, W)
        Float in [0, 1], any size of at least one patch. Grey is copied to RGB for an RGB model
        and RGB converted to grey for a grey one (said in ``notes``).
    k : int
        Number of clusters, 2 .. 16.
    seed : int, default=0
        k-means ``random_state``.
    batch_size : int, default=64
        Tiles encoded at once.

    Returns
    -------
    Segmentation

    Raises
    ------
    ConfigError
        ``k`` is not an int in 2 .. 16.
    DataShapeError
        The image is not (C, H, W) / (H, W), holds NaN, or is smaller than one patch.
    """
    from sklearn.cluster import KMeans

    if not isinstance(k, int) or isinstance(k, bool) or not MIN_K <= k <= MAX_K:
        raise ConfigError(f"k must be an int from {MIN_K} to {MAX_K}; got {k!r}.")
    _check_batch_size(batch_size)
    start = time.perf_counter()
    image = _check_image(image)
    c_in, th, tw = model.config.input_shape
    shape = tuple(model.latent_shape)
    gh, gw = shape[1:] if len(shape) == 3 else (1, 1)
    ph, pw = th // gh, tw // gw  # pixels per patch
    _, h, w = image.shape
    if h < ph or w < pw:
        raise DataShapeError(
            f"The image is {h}x{w} pixels, smaller than one patch of this model ({ph}x{pw} "
            f"pixels: it maps {th}x{tw} inputs to a {gh}x{gw} grid). Use a larger image."
        )
    image, note = match_channels(image, c_in)
    notes = [note] if note else []
    rows, cols = math.ceil(h / th), math.ceil(w / tw)
    padded = np.pad(image, ((0, 0), (0, rows * th - h), (0, cols * tw - w)), mode="edge")
    tiles = padded.reshape(c_in, rows, th, cols, tw).transpose(1, 3, 0, 2, 4)
    feats = patch_features(model, tiles.reshape(-1, c_in, th, tw), batch_size=batch_size)
    f = feats.shape[1]
    grid = feats.reshape(rows, cols, f, gh, gw).transpose(0, 3, 1, 4, 2)  # (rows, gh, cols, gw, F)
    # pixel -> grid cell: tile index * cells per tile + position inside the tile
    ys, xs = np.arange(h), np.arange(w)
    cell_y = (ys // th) * gh + (ys % th) * gh // th  # (H,)
    cell_x = (xs // tw) * gw + (xs % tw) * gw // tw  # (W,)
    grid = grid.reshape(rows * gh, cols * gw, f)[: cell_y[-1] + 1, : cell_x[-1] + 1]
    x = grid.reshape(-1, f).astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    distinct = len(np.unique(x.round(6), axis=0))
    k_used = min(k, distinct)
    if k_used < k:
        notes.append(f"Only {distinct} distinct patch code(s) in this image: using k={k_used}.")
    if k_used < 2:
        labels = np.zeros(len(x), np.int64)
    else:
        km = KMeans(n_clusters=k_used, n_init=4, random_state=seed)
        labels = km.fit_predict(x).astype(np.int64)
    grid_labels = labels.reshape(grid.shape[:2])
    pixel = grid_labels[cell_y][:, cell_x]  # nearest-neighbour upsampling
    return Segmentation(
        labels=np.ascontiguousarray(pixel),
        grid_labels=grid_labels,
        patch=(ph, pw),
        n_tiles=rows * cols,
        k=k_used,
        notes=tuple(notes),
        seconds=time.perf_counter() - start,
    )


def resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    """Rescale a (C, H, W) float image in [0, 1] by ``scale`` (bilinear, antialiased).

    Raises
    ------
    ConfigError
        ``scale`` is not in (0, 4].
    """
    if not isinstance(scale, int | float) or not 0 < scale <= 4:
        raise ConfigError(f"scale must be a number in (0, 4]; got {scale!r}.")
    image = _check_image(image)
    if scale == 1:
        return image
    t = torch.from_numpy(image)[None]
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[2] * scale)))
    out = torch.nn.functional.interpolate(
        t, size=size, mode="bilinear", antialias=scale < 1, align_corners=False
    )
    return out[0].clamp(0, 1).numpy()
